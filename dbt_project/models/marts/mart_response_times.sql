{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'requested_month'],
        on_schema_change='fail',
    )
}}

{#- Response times per city, department, category and city-local month of
    request, open requests measured at their city's as-of (dim_city.as_of).
    A run recomputes whole (city, month) periods: those holding a
    request that changed in the partition window, and, on an incremental run,
    those whose figures move with the as-of time alone: a period with open
    requests (Kaplan–Meier censoring and backlog ages grow with the clock) or
    with an invalid duration (fct re-checks date_in_future every run, so such
    a request may have become valid without changing upstream). -#}

with

affected_periods as (

    select distinct city_id, requested_month
    from {{ ref('fct_service_requests') }}
    where {{ changed_in_window('updated_at') }}

    {% if is_incremental() %}
    union

    select city_id, requested_month
    from {{ this }}
    where open_requests > 0 or excluded_invalid_duration > 0
    {% endif %}

),

requests as (

    select requests.*
    from {{ ref('fct_service_requests') }} as requests
    semi join affected_periods using (city_id, requested_month)

),

cities as (

    select city_id, as_of from {{ ref('dim_city') }}

),

classified as (

    select
        requests.city_id,
        department_id,
        category_id,
        requested_month,
        closed_at,
        exclusion_reason,
        hours_to_close,
        sla_due_at,
        closed_within_sla,
        exclusion_reason is null as is_counted,
        exclusion_reason is null and hours_to_close_null_reason = 'not_closed' as is_open,
        cities.as_of,
        {{ hours_between('requests.requested_at', 'cities.as_of') }} as hours_since_requested

    from requests
    left join cities on requests.city_id = cities.city_id

),

durations as (

    {#- Closed requests are events at hours_to_close; open ones are censored
        at their age, since all we know is that they took at least that long. #}
    select
        city_id,
        department_id,
        category_id,
        requested_month,
        coalesce(hours_to_close, hours_since_requested) as duration_hours,
        hours_to_close is not null as is_event

    from classified
    where is_counted

),

kaplan_meier as (

    {{ kaplan_meier_median('durations', ['city_id', 'department_id', 'category_id', 'requested_month']) }}

),

aggregated as (

    select
        city_id,
        department_id,
        category_id,
        requested_month,
        count(*) as requests,
        count(closed_at) as closed_requests,
        count(*) filter (where exclusion_reason = 'information_only') as excluded_information_only,
        count(*) filter (where exclusion_reason = 'duplicate') as excluded_duplicate,
        count(*) filter (where exclusion_reason = 'invalid_duration') as excluded_invalid_duration,
        count(*) filter (where exclusion_reason = 'staff_initiated') as excluded_staff_initiated,
        count(*) filter (where exclusion_reason = 'closed_on_creation') as excluded_closed_on_creation,
        count(*) filter (where is_counted) as counted_requests,
        count(hours_to_close) filter (where is_counted) as valid_closed_requests,
        quantile_cont(hours_to_close, 0.5) filter (where is_counted) as median_hours_to_close,
        quantile_cont(hours_to_close, 0.9) filter (where is_counted) as p90_hours_to_close,
        count(*) filter (where is_open) as open_requests,
        count(*) filter (where is_open and hours_since_requested < 24) as open_0_1_days,
        count(*) filter (
            where is_open and hours_since_requested >= 24 and hours_since_requested < 3 * 24
        ) as open_1_3_days,
        count(*) filter (
            where is_open and hours_since_requested >= 3 * 24 and hours_since_requested < 7 * 24
        ) as open_3_7_days,
        count(*) filter (
            where is_open and hours_since_requested >= 7 * 24 and hours_since_requested < 30 * 24
        ) as open_7_30_days,
        count(*) filter (where is_open and hours_since_requested >= 30 * 24) as open_30_plus_days,
        count(*) filter (
            where is_counted and hours_to_close is not null and sla_due_at is not null
        ) as sla_requests,
        count(*) filter (where is_counted and closed_within_sla) as closed_within_sla_requests,
        -- only open requests are measured against the as-of; a group without
        -- them does not depend on it (and is not recomputed as it moves)
        max(as_of) filter (where is_open) as as_of

    from classified
    group by city_id, department_id, category_id, requested_month

),

final as (

    select
        aggregated.city_id,
        aggregated.department_id,
        aggregated.category_id,
        aggregated.requested_month,
        aggregated.requests,
        aggregated.closed_requests,
        aggregated.excluded_information_only,
        aggregated.excluded_duplicate,
        aggregated.excluded_invalid_duration,
        aggregated.excluded_staff_initiated,
        aggregated.excluded_closed_on_creation,
        aggregated.counted_requests,
        aggregated.valid_closed_requests,
        aggregated.median_hours_to_close,
        aggregated.p90_hours_to_close,
        kaplan_meier.km_median_hours as km_median_hours_to_close,
        aggregated.open_requests,
        aggregated.open_0_1_days,
        aggregated.open_1_3_days,
        aggregated.open_3_7_days,
        aggregated.open_7_30_days,
        aggregated.open_30_plus_days,
        aggregated.sla_requests,
        aggregated.closed_within_sla_requests,
        100.0 * aggregated.closed_within_sla_requests / nullif(aggregated.sla_requests, 0)
            as pct_closed_within_sla,
        aggregated.as_of

    from aggregated
    left join kaplan_meier
        on aggregated.city_id = kaplan_meier.city_id
        and aggregated.department_id = kaplan_meier.department_id
        and aggregated.category_id = kaplan_meier.category_id
        and aggregated.requested_month = kaplan_meier.requested_month

)

select * from final
