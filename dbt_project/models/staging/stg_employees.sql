with source as (

    select * from {{ source('prodtwin', 'employees') }}

),

renamed as (

    select
        id,
        full_name,
        email,
        manager_id,
        department,
        hired_at,
        salary

    from source

)

select * from renamed
