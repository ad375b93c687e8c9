with source as (

    select * from {{ source('prodtwin', 'referrals') }}

),

renamed as (

    select
        id,
        referrer_id,
        referred_id,
        created_at,
        reward

    from source

)

select * from renamed
