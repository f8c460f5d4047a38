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
    department tested exactly as mart_hotspots tests a category: its week
    against the same area and department's 8 weeks before.

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

{%- set baseline_weeks = 8 -%}
{%- set lambda_floor = 1.0 / baseline_weeks -%}
{%- set significance = 0.01 -%}
{%- set min_spike_requests = 5 -%}

with

requests as (

    select
        city_id,
        area_id,
        requested_week,
        -- a null key never matches in a join; `<city>.unmapped` names a department the seed lacks
        coalesce(department_id, city_id || '.unmapped') as spike_department_id,
        not coalesce(is_information_only, false)
            and not is_duplicate
            and requested_at >= timestamptz '2000-01-01 00:00:00+00' as is_demand,
        {{ changed_in_window('updated_at') }} as is_changed

    from {{ ref('fct_service_requests') }}

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

affected_weeks as (

    select distinct
        requests.city_id,
        cast(requests.requested_week + to_weeks(offsets.weeks_after) as date) as requested_week

    from requests
    cross join range({{ baseline_weeks + 1 }}) as offsets (weeks_after)
    where requests.is_changed

    union

    select requests.city_id, requests.requested_week
    from requests
    inner join city_bounds on requests.city_id = city_bounds.city_id
    where requests.is_demand
        and city_bounds.first_changed_week is not null
        and requests.requested_week
        >= least(city_bounds.first_week, city_bounds.first_changed_week) + to_weeks({{ baseline_weeks }})
        and (
            city_bounds.first_unchanged_week is null
            or requests.requested_week < city_bounds.first_unchanged_week + to_weeks({{ baseline_weeks }})
        )

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
        spike_department_id,
        requested_week,
        count(*) as requests,
        -- weeks since a Monday, so the baseline window can be a RANGE frame
        date_diff('day', date '2000-01-03', requested_week) // 7 as week_number

    from requests
    semi join context_weeks using (city_id, requested_week)
    where is_demand
    group by city_id, area_id, spike_department_id, requested_week

),

baselined as (

    select
        weekly.*,
        -- a week with no row had no demand: it adds 0 to the sum
        coalesce(sum(weekly.requests) over (
            partition by weekly.city_id, weekly.area_id, weekly.spike_department_id
            order by weekly.week_number
            range between {{ baseline_weeks }} preceding and 1 preceding
        ), 0) as baseline_requests,
        weekly.requested_week >= city_bounds.first_week + to_weeks({{ baseline_weeks }}) as has_full_baseline

    from weekly
    inner join city_bounds on weekly.city_id = city_bounds.city_id

),

scored as (

    select
        *,
        case
            when has_full_baseline then {{ poisson_upper_tail(
                'requests',
                'greatest(baseline_requests / ' ~ baseline_weeks ~ ', ' ~ lambda_floor ~ ')'
            ) }}
        end as poisson_p

    from baselined

),

tested as (

    select
        *,
        coalesce(poisson_p < {{ significance }} and requests >= {{ min_spike_requests }}, false) as is_spike

    from scored
    semi join affected_weeks using (city_id, requested_week)

),

joint_spikes as (

    select
        city_id,
        area_id,
        requested_week,
        count(*) filter (where is_spike) as spiking_departments,
        string_agg(spike_department_id, ',' order by spike_department_id) filter (where is_spike)
            as department_ids,
        sum(requests) filter (where is_spike) as requests,
        sum(requests) as area_requests

    from tested
    group by city_id, area_id, requested_week
    having count(*) filter (where is_spike) >= 2

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
