with source as (

    select * from {{ source('prodtwin', 'addresses') }}

),

renamed as (

    select
        id,
        customer_id,
        street,
        city,
        postal_code,
        country,
        is_default

    from source

)

select * from renamed
