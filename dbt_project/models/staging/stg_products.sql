with source as (

    select * from {{ source('prodtwin', 'products') }}

),

renamed as (

    select
        id,
        sku,
        category_id,
        name,
        price,
        attributes,
        created_at

    from source

)

select * from renamed
