with source as (

    select * from {{ source('prodtwin', 'orders') }}

),

renamed as (

    select
        id,
        customer_id,
        shipping_address_id,
        handled_by,
        status,
        currency,
        ordered_at,
        total

    from source

)

select * from renamed
