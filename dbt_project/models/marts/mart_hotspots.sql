{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'requested_week'],
        on_schema_change='fail',
    )
}}

{#- Emerging clusters of demand: each (city, layer, area, category, local
    week) with demand, against the same area and category's 8 weeks before
    (the weekly spike test, macros/weekly_spikes.sql); the area of each
    request in each layer comes from int_request_areas. An incremental run
    recomputes, in every layer, the (city, week)s holding a request that
    changed in the partition window, those whose rows are on a layer version
    the city no longer has (changed or dropped boundaries) and, for a city
    with a new layer, all its weeks; and the 8 weeks after each (their
    baselines hold them), plus, when a city's first demand week moved (a late-arriving older
    request), the weeks whose full-baseline status moved with it. The 8 weeks
    before those are counted too, only to feed the baselines. -#}

with

fct as (

    select * from {{ ref('fct_service_requests') }}

),

{{ request_area_ctes() }}

demand_requests as (

    select
        city_id,
        request_id,
        category_id,
        requested_week
    from fct
    where {{ is_demand() }}

),

-- one row per demand request and layer: the request in its area of each layer
demand as (

    select
        demand_requests.city_id,
        request_areas.layer,
        request_areas.area_id,
        demand_requests.category_id,
        demand_requests.requested_week

    from demand_requests
    inner join request_areas
        on demand_requests.city_id = request_areas.city_id
            and demand_requests.request_id = request_areas.request_id

),

city_starts as (

    select
        city_id,
        min(requested_week) as first_week
    from demand_requests
    group by city_id

),

changed_weeks as (

    select
        city_id,
        requested_week
    from fct
    where {{ changed_in_window('updated_at') }}

    {% if is_incremental() %}
    union

    {{ periods_with_moved_areas('requested_week') }}
    {% endif %}

),

{% if is_incremental() %}
previous_starts as (

    select city_id, min(requested_week) as first_week
    from {{ this }}
    group by city_id

),

moved_starts as (

    select
        city_starts.city_id,
        least(city_starts.first_week, previous_starts.first_week) as earlier_week,
        greatest(city_starts.first_week, previous_starts.first_week) as later_week

    from city_starts
    inner join previous_starts on city_starts.city_id = previous_starts.city_id
    where city_starts.first_week <> previous_starts.first_week

),

restarted_weeks as (

    -- weeks with a full baseline counted from one start but not from the other
    select previous_build.city_id, previous_build.requested_week
    from {{ this }} as previous_build
    inner join moved_starts on previous_build.city_id = moved_starts.city_id
    where previous_build.requested_week >= {{ first_full_baseline_week('moved_starts.earlier_week') }}
        and previous_build.requested_week < {{ first_full_baseline_week('moved_starts.later_week') }}

),
{% endif %}

affected_weeks as (

    {{ baseline_reach('changed_weeks', 'after') }}

    {% if is_incremental() %}
    union

    select city_id, requested_week
    from restarted_weeks
    {% endif %}

),

context_weeks as (

    {{ baseline_reach('affected_weeks', 'before') }}

),

scored as (

    {{ weekly_spike_test('demand', ['layer', 'area_id', 'category_id'], 'city_starts', 'context_weeks') }}

),

final as (

    select
        scored.city_id,
        scored.layer,
        scored.area_id,
        scored.category_id,
        scored.requested_week,
        cast(scored.requests as integer) as requests,
        cast({{ weekly_spike_rule().baseline_weeks }} as integer) as baseline_weeks,
        cast(scored.baseline_requests as integer) as baseline_requests,
        cast(scored.baseline_mean as double) as baseline_mean,
        cast(scored.poisson_lambda as double) as poisson_lambda,
        scored.has_full_baseline,
        scored.poisson_p,
        scored.is_spike as is_emerging,
        layer_versions.layer_version

    from scored
    left join layer_versions
        on scored.city_id = layer_versions.city_id
            and scored.layer = layer_versions.layer
    semi join affected_weeks
        on scored.city_id = affected_weeks.city_id
            and scored.requested_week = affected_weeks.requested_week

)

select * from final
