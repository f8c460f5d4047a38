{#- One row per city feed, with the city's as-of: the instant its figures that
    move with the clock (the ages of open requests, Kaplan–Meier censoring) are
    measured at. The var as_of, when set, is every city's; otherwise it is the
    newest change the city's data holds (its latest updated_at, requested_at or
    closed_at, never after the build time): near the wall clock for a live
    feed, the day it was taken for an export. -#}
{#- The as-of without the var (least() skips a null: a city with no requests would
    get the build time). -#}
{%- set newest_change_as_of -%}
case
    when newest_changes.newest_change is not null
        then least(newest_changes.newest_change, current_timestamp)
end
{%- endset %}
{%- set newest_change_source -%}
case when newest_changes.newest_change is not null then 'newest_change' end
{%- endset %}

with

cities as (

    select * from {{ ref('cities') }}

),

newest_changes as (

    select
        city_id,
        max(greatest(updated_at, requested_at, closed_at)) as newest_change

    from {{ ref('fct_service_requests') }}
    group by city_id

),

final as (

    select
        cities.city_id,
        cities.city_name,
        cities.municipality,
        cities.country,
        cities.timezone,
        cities.protocol,
        {{ as_of() if var('as_of', none) else newest_change_as_of }} as as_of,
        {{ "'var_as_of'" if var('as_of', none) else newest_change_source }} as as_of_source

    from cities
    left join newest_changes
        on cities.city_id = newest_changes.city_id

)

select * from final
