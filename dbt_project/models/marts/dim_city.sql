with

cities as (

    select * from {{ ref('cities') }}

),

final as (

    select
        city_id,
        city_name,
        municipality,
        country,
        timezone,
        protocol

    from cities

)

select * from final
