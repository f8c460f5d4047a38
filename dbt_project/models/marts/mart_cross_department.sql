{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'requested_month'],
        on_schema_change='fail',
    )
}}

{#- Departments compared within and across cities, per month of request.
    category_median_ratio compares a month across every city, so a change in
    one city changes the figures of the others: an incremental run recomputes
    every city's rows of each month holding a request that changed in the
    window (or whose events did), and of each month still holding a duration
    held back because a date lies after the previous build's as-of time. -#}

with

requests as (

    select * from {{ ref('fct_service_requests') }}

),

events as (

    select * from {{ ref('fct_request_events') }}

),

affected_months as (

    select requested_month
    from requests
    where {{ changed_in_window('updated_at') }}

    union

    select requests.requested_month
    from events
    inner join requests using (city_id, request_id)
    where {{ changed_in_window('events.updated_at') }}

    {% if is_incremental() %}
    union

    select requested_month
    from {{ this }}
    where future_dated_requests > 0
    {% endif %}

),

month_requests as (

    select requests.*
    from requests
    semi join affected_months using (requested_month)

),

-- Chicago publishes the department that took a request as well as the one that owns it
published_departments as (

    select
        city_id,
        request_id,
        json_extract_string(service_requests.extras, '$.created_department') as created_department,
        json_extract_string(service_requests.extras, '$.owner_department') as owner_department

    from {{ ref('int_service_requests') }} as service_requests
    semi join month_requests using (city_id, request_id)

),

classified as (

    select
        month_requests.city_id,
        month_requests.department_id,
        month_requests.category_id,
        month_requests.requested_month,
        month_requests.is_duplicate,
        month_requests.hours_to_close,
        month_requests.hours_to_close_null_reason,
        (
            month_requests.exclusion_reason is null
            and month_requests.hours_to_close is not null
        ) as is_valid_closed,
        (
            published_departments.created_department is not null
            and published_departments.owner_department is not null
        ) as has_created_department,
        (
            lower(trim(published_departments.created_department))
            <> lower(trim(published_departments.owner_department))
        ) as was_created_elsewhere

    from month_requests
    left join published_departments using (city_id, request_id)

),

handoffs as (

    select
        month_requests.city_id,
        month_requests.category_id,
        month_requests.requested_month,
        events.from_department_id,
        events.to_department_id

    from events
    inner join month_requests using (city_id, request_id)
    where events.event_type = 'reassigned'

),

-- one row per request, hand-off out and hand-off in, so a department that
-- only passed requests on still gets its row
contributions as (

    select
        city_id,
        department_id,
        category_id,
        requested_month,
        1 as is_request,
        is_duplicate,
        is_valid_closed,
        hours_to_close,
        hours_to_close_null_reason = 'date_in_future' as is_future_dated,
        has_created_department,
        was_created_elsewhere,
        0 as is_handoff_out,
        0 as is_handoff_in

    from classified

    union all

    select
        city_id,
        from_department_id,
        category_id,
        requested_month,
        0 as is_request,
        false as is_duplicate,
        false as is_valid_closed,
        null as hours_to_close,
        false as is_future_dated,
        false as has_created_department,
        false as was_created_elsewhere,
        1 as is_handoff_out,
        0 as is_handoff_in

    from handoffs

    union all

    select
        city_id,
        to_department_id,
        category_id,
        requested_month,
        0 as is_request,
        false as is_duplicate,
        false as is_valid_closed,
        null as hours_to_close,
        false as is_future_dated,
        false as has_created_department,
        false as was_created_elsewhere,
        0 as is_handoff_out,
        1 as is_handoff_in

    from handoffs

),

cells as (

    select
        city_id,
        department_id,
        category_id,
        requested_month,
        sum(is_request) as requests,
        count(*) filter (where is_duplicate) as duplicate_requests,
        count(*) filter (where is_valid_closed) as valid_closed_requests,
        quantile_cont(hours_to_close, 0.5) filter (where is_valid_closed) as median_hours_to_close,
        count(*) filter (where has_created_department) as requests_with_created_department,
        count(*) filter (where was_created_elsewhere) as created_elsewhere_count,
        count(*) filter (where is_future_dated) as future_dated_requests,
        sum(is_handoff_out) as handoffs_out,
        sum(is_handoff_in) as handoffs_in

    from contributions
    group by city_id, department_id, category_id, requested_month

),

all_cities_medians as (

    select
        category_id,
        requested_month,
        quantile_cont(hours_to_close, 0.5) as median_hours_to_close

    from classified
    -- unclassified types are no one category across cities: no all-cities median
    where is_valid_closed and category_id <> 'unclassified'
    group by category_id, requested_month

),

final as (

    select
        cells.city_id,
        cells.department_id,
        cells.category_id,
        cells.requested_month,
        cast(cells.requests as bigint) as requests,
        cells.duplicate_requests,
        case when cells.requests > 0 then cells.duplicate_requests / cells.requests end as duplicate_rate,
        coalesce(
            cells.requests / nullif(sum(cells.requests) over by_city_category, 0), 0.0
        ) as department_share_of_category,
        cast(cells.handoffs_out as bigint) as handoffs_out,
        cast(cells.handoffs_in as bigint) as handoffs_in,
        case
            when cells.requests_with_created_department > 0 then cells.created_elsewhere_count
        end as created_elsewhere_requests,
        case
            when cells.requests_with_created_department > 0
                then cells.created_elsewhere_count / cells.requests_with_created_department
        end as created_elsewhere_share,
        cells.valid_closed_requests,
        cells.median_hours_to_close,
        all_cities_medians.median_hours_to_close as all_cities_median_hours_to_close,
        cells.median_hours_to_close / nullif(all_cities_medians.median_hours_to_close, 0)
            as category_median_ratio,
        cells.future_dated_requests

    from cells
    left join all_cities_medians
        on cells.category_id = all_cities_medians.category_id
            and cells.requested_month = all_cities_medians.requested_month
    window by_city_category as (partition by cells.city_id, cells.category_id, cells.requested_month)

)

select * from final
