{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'handoff_month'],
        on_schema_change='fail',
    )
}}

{#- Which department hands requests to which, per city-local month of the
    hand-off. An incremental run recomputes the (city, month)s holding a
    hand-off of a request whose events changed in the partition window. -#}

with

events as (

    select * from {{ ref('fct_request_events') }}

),

cities as (

    select * from {{ ref('dim_city') }}

),

handoffs as (

    select
        events.city_id,
        events.request_id,
        events.from_department_id,
        events.to_department_id,
        events.hours_with_from_department,
        -- the city's wall clock; utc_to_local() takes a literal zone, here it is per row
        cast(date_trunc('month', timezone(cities.timezone, events.event_at)) as date) as handoff_month

    from events
    inner join cities on events.city_id = cities.city_id
    where events.event_type = 'reassigned'

),

changed_requests as (

    select distinct
        city_id,
        request_id
    from events
    where {{ changed_in_window('updated_at') }}

),

affected_months as (

    select distinct
        handoffs.city_id,
        handoffs.handoff_month
    from handoffs
    semi join changed_requests using (city_id, request_id)

),

final as (

    select
        handoffs.city_id,
        handoffs.from_department_id,
        handoffs.to_department_id,
        handoffs.handoff_month,
        count(*) as handoffs,
        quantile_cont(handoffs.hours_with_from_department, 0.5) as median_hours_before_handoff

    from handoffs
    semi join affected_months using (city_id, handoff_month)
    group by
        handoffs.city_id,
        handoffs.from_department_id,
        handoffs.to_department_id,
        handoffs.handoff_month

)

select * from final
