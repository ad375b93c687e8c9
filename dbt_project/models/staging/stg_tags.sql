with source as (

    select * from {{ source('prodtwin', 'tags') }}

),

renamed as (

    select
        id,
        name

    from source

)

select * from renamed
