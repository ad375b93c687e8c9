with source as (

    select * from {{ source('prodtwin', 'payments') }}

),

renamed as (

    select
        id,
        order_id,
        amount,
        method,
        paid_at

    from source

)

select * from renamed
