{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'requested_week'],
        on_schema_change='fail',
    )
}}

{#- Emerging clusters of demand: each (city, area, category, local week) with
    demand, against the same area and category's 8 weeks before. An
    incremental run recomputes the (city, week)s holding a request that changed
    in the partition window and the 8 weeks after each (their baselines hold
    it), plus, when a city's first demand week moved (a late-arriving older
    request), the weeks whose full-baseline status moved with it. The 8 weeks
    before those are counted too, only to feed the baselines. -#}

{%- set baseline_weeks = 8 -%}
{%- set lambda_floor = 1.0 / baseline_weeks -%}
{%- set significance = 0.01 -%}
{%- set min_emerging_requests = 5 -%}

with

fct as (

    select
        *,
        -- a null key would never match in a join or a delete+insert
        coalesce(category_id, 'unmapped') as hotspot_category_id

    from {{ ref('fct_service_requests') }}

),

demand as (

    select city_id, area_id, hotspot_category_id, requested_week
    from fct
    where not coalesce(is_information_only, false)
        and not is_duplicate
        and requested_at >= timestamptz '2000-01-01 00:00:00+00'

),

city_starts as (

    select city_id, min(requested_week) as first_week
    from demand
    group by city_id

),

changed_weeks as (

    select city_id, requested_week
    from fct
    where {{ changed_in_window('updated_at') }}

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

    -- weeks on or after one start + 8 weeks but before the other
    select previous_build.city_id, previous_build.requested_week
    from {{ this }} as previous_build
    inner join moved_starts on previous_build.city_id = moved_starts.city_id
    where previous_build.requested_week >= moved_starts.earlier_week + to_weeks({{ baseline_weeks }})
        and previous_build.requested_week < moved_starts.later_week + to_weeks({{ baseline_weeks }})

),
{% endif %}

affected_weeks as (

    select distinct
        changed_weeks.city_id,
        cast(changed_weeks.requested_week + to_weeks(offsets.weeks_after) as date) as requested_week

    from changed_weeks
    cross join range({{ baseline_weeks + 1 }}) as offsets (weeks_after)

    {% if is_incremental() %}
    union

    select city_id, requested_week
    from restarted_weeks
    {% endif %}

),

context_weeks as (

    select distinct
        affected_weeks.city_id,
        cast(affected_weeks.requested_week - to_weeks(offsets.weeks_before) as date) as requested_week

    from affected_weeks
    cross join range({{ baseline_weeks + 1 }}) as offsets (weeks_before)

),

weekly as (

    select
        city_id,
        area_id,
        hotspot_category_id,
        requested_week,
        count(*) as requests,
        -- weeks since a Monday, so the baseline window can be a RANGE frame
        date_diff('day', date '2000-01-03', requested_week) // 7 as week_number

    from demand
    semi join context_weeks using (city_id, requested_week)
    group by city_id, area_id, hotspot_category_id, requested_week

),

baselined as (

    select
        weekly.*,
        -- a week with no row had no demand: it adds 0 to the sum
        coalesce(sum(weekly.requests) over (
            partition by weekly.city_id, weekly.area_id, weekly.hotspot_category_id
            order by weekly.week_number
            range between {{ baseline_weeks }} preceding and 1 preceding
        ), 0) as baseline_requests,
        weekly.requested_week >= city_starts.first_week + to_weeks({{ baseline_weeks }}) as has_full_baseline

    from weekly
    inner join city_starts on weekly.city_id = city_starts.city_id

),

tested as (

    select
        *,
        baseline_requests / {{ baseline_weeks }} as baseline_mean,
        greatest(baseline_requests / {{ baseline_weeks }}, {{ lambda_floor }}) as poisson_lambda

    from baselined

),

scored as (

    select
        *,
        case
            when has_full_baseline then {{ poisson_upper_tail('requests', 'poisson_lambda') }}
        end as poisson_p

    from tested

),

final as (

    select
        scored.city_id,
        scored.area_id,
        scored.hotspot_category_id as category_id,
        scored.requested_week,
        cast(scored.requests as integer) as requests,
        cast({{ baseline_weeks }} as integer) as baseline_weeks,
        cast(scored.baseline_requests as integer) as baseline_requests,
        cast(scored.baseline_mean as double) as baseline_mean,
        cast(scored.poisson_lambda as double) as poisson_lambda,
        scored.has_full_baseline,
        scored.poisson_p,
        coalesce(
            scored.poisson_p < {{ significance }} and scored.requests >= {{ min_emerging_requests }}, false
        ) as is_emerging

    from scored
    semi join affected_weeks using (city_id, requested_week)

)

select * from final
