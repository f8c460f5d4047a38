{#- The places requests are counted in. For now an area is a ZIP code of the
    city, or `unlocated` for requests without one; boundary layers come with
    the geography work. -#}

with

requests as (

    select * from {{ ref('fct_service_requests') }}

),

areas as (

    select
        city_id,
        area_id,
        count(*) as requests

    from requests
    group by city_id, area_id

),

final as (

    select
        city_id,
        area_id,
        case when area_id = 'unlocated' then 'unlocated' else 'zip' end as area_type,
        case when area_id = 'unlocated' then 'Unlocated' else 'ZIP ' || area_id end as area_name,
        cast(null as bigint) as population,
        cast(null as varchar) as population_source

    from areas

)

select * from final
