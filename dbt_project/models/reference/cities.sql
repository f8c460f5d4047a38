{#- One row per city of the registry (ingestion/cities.yaml), from the var
    `cities`: what dim_city, the plausibility test and the response-time
    exclusions read. -#}

with

registry (
    city_id, city_name, municipality, country, timezone, protocol,
    south, west, north, east, closed_on_creation_seconds
) as (

    values
    {%- for city in city_feeds() %}
    (
        '{{ city.id }}',
        '{{ city.name | replace("'", "''") }}',
        '{{ city.municipality | replace("'", "''") }}',
        '{{ city.country }}',
        '{{ city.timezone }}',
        '{{ city.protocol }}',
        {{ city.south }},
        {{ city.west }},
        {{ city.north }},
        {{ city.east }},
        {{ city.closed_on_creation_seconds }}
    ){% if not loop.last %},{% endif %}
    {%- endfor %}

),

final as (

    select
        cast(city_id as varchar) as city_id,
        cast(city_name as varchar) as city_name,
        cast(municipality as varchar) as municipality,
        cast(country as varchar) as country,
        cast(timezone as varchar) as timezone,
        cast(protocol as varchar) as protocol,
        cast(south as double) as south,
        cast(west as double) as west,
        cast(north as double) as north,
        cast(east as double) as east,
        cast(closed_on_creation_seconds as integer) as closed_on_creation_seconds

    from registry

)

select * from final
