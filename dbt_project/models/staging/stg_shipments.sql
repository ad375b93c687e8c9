with source as (

    select * from {{ source('prodtwin', 'shipments') }}

),

renamed as (

    select
        id,
        order_id,
        carrier,
        tracking_code,
        shipped_at,
        delivered_at

    from source

)

select * from renamed
