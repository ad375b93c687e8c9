with source as (

    select * from {{ source('prodtwin', 'event_log') }}

),

renamed as (

    select
        occurred_at,
        event_type,
        customer_id,
        ip_address,
        payload

    from source

)

select * from renamed
