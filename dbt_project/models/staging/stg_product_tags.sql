with source as (

    select * from {{ source('prodtwin', 'product_tags') }}

),

renamed as (

    select
        product_id,
        tag_id

    from source

)

select * from renamed
