with source as (

    select * from {{ source('prodtwin', 'customers') }}

),

renamed as (

    select
        id,
        first_name,
        last_name,
        email,
        phone,
        birth_date,
        country,
        segment,
        signed_up_at

    from source

)

select * from renamed
