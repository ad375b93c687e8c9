with source as (

    select * from {{ source('prodtwin', 'categories') }}

),

renamed as (

    select
        id,
        name,
        parent_id

    from source

)

select * from renamed
