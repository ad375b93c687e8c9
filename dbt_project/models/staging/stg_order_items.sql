with source as (

    select * from {{ source('prodtwin', 'order_items') }}

),

renamed as (

    select
        order_id,
        line_no,
        product_id,
        qty,
        unit_price

    from source

)

select * from renamed
