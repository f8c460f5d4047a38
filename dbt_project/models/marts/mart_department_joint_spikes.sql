{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'requested_week'],
        on_schema_change='fail',
        post_hook="delete from {{ this }} where area_id is null",
    )
}}

{#- Areas where two or more departments' demand spikes in the same week, each
    department tested exactly as mart_hotspots tests a category (the weekly
    spike test, macros/weekly_spikes.sql): its week against the same area and
    department's 8 weeks before.

    An incremental run recomputes the (city, week)s holding a request that
    changed in the partition window and the 8 weeks after each (their
    baselines hold it). A change at or before the first week of the requests
    that did not change may also have moved the city's first demand week, and
    with it which weeks have a full baseline: those weeks, from the earlier of
    the city's first demand week and the first changed week (+ 8) to the first
    unchanged week (+ 8), are recomputed too. This needs no state, assuming a
    request keeps its requested_at.

    Rows exist only for joint spikes, so a recomputed week that no longer has
    one would keep its old rows: an incremental run emits one marker row
    (area_id null) per recomputed (city, week), which makes delete+insert clear
    the week, and the post-hook deletes the markers. -#}

with

requests as (

    select
        city_id,
        area_id,
        requested_week,
        department_id,
        {{ is_demand() }} as is_demand,
        {{ changed_in_window('updated_at') }} as is_changed

    from {{ ref('fct_service_requests') }}

),

demand as (

    select
        city_id,
        area_id,
        department_id,
        requested_week
    from requests
    where is_demand

),

changed_weeks as (

    select
        city_id,
        requested_week
    from requests
    where is_changed

),

city_bounds as (

    select
        city_id,
        min(requested_week) filter (where is_demand) as first_week,
        min(requested_week) filter (where is_changed) as first_changed_week,
        min(requested_week) filter (where is_demand and not is_changed) as first_unchanged_week

    from requests
    group by city_id

),

restarted_weeks as (

    -- weeks whose full baseline may have moved with the city's first demand week
    select
        requests.city_id,
        requests.requested_week
    from requests
    inner join city_bounds on requests.city_id = city_bounds.city_id
    where requests.is_demand
        and city_bounds.first_changed_week is not null
        and requests.requested_week >= {{
            first_full_baseline_week('least(city_bounds.first_week, city_bounds.first_changed_week)')
        }}
        and (
            city_bounds.first_unchanged_week is null
            or requests.requested_week < {{ first_full_baseline_week('city_bounds.first_unchanged_week') }}
        )

),

affected_weeks as (

    {{ baseline_reach('changed_weeks', 'after') }}

    union

    select
        city_id,
        requested_week
    from restarted_weeks

),

context_weeks as (

    {{ baseline_reach('affected_weeks', 'before') }}

),

scored as (

    {{ weekly_spike_test('demand', ['area_id', 'department_id'], 'city_bounds', 'context_weeks') }}

),

joint_spikes as (

    select
        city_id,
        scored.area_id,
        requested_week,
        count(*) filter (where scored.is_spike) as spiking_departments,
        string_agg(scored.department_id, ',' order by scored.department_id) filter (where scored.is_spike)
            as department_ids,
        sum(scored.requests) filter (where scored.is_spike) as requests,
        sum(scored.requests) as area_requests

    from scored
    semi join affected_weeks using (city_id, requested_week)
    group by city_id, scored.area_id, requested_week
    having count(*) filter (where scored.is_spike) >= 2

),

{% if is_incremental() %}
markers as (

    select
        city_id,
        cast(null as varchar) as area_id,
        requested_week,
        0 as spiking_departments,
        cast(null as varchar) as department_ids,
        0 as requests,
        0 as area_requests

    from affected_weeks

),
{% endif %}

final as (

    select
        city_id,
        area_id,
        requested_week,
        cast(spiking_departments as integer) as spiking_departments,
        department_ids,
        cast(requests as integer) as requests,
        cast(area_requests as integer) as area_requests

    from joint_spikes

    {% if is_incremental() %}
    union all

    select
        city_id,
        area_id,
        requested_week,
        cast(spiking_departments as integer),
        department_ids,
        cast(requests as integer),
        cast(area_requests as integer)

    from markers
    {% endif %}

)

select * from final
