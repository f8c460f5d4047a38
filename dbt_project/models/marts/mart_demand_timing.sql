{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'category_id'],
        on_schema_change='fail',
    )
}}

{#- When in the week demand arrives: a dense 168-hour grid per (city, category).
    An incremental run recomputes the (city, category) groups holding a request
    that changed in the partition window. -#}

with

requests as (

    select * from {{ ref('fct_service_requests') }}

),

affected_groups as (

    select distinct
        city_id,
        category_id
    from requests
    where {{ changed_in_window('updated_at') }}

),

group_requests as (

    select requests.*
    from requests
    semi join affected_groups using (city_id, category_id)

),

demand as (

    select
        city_id,
        category_id,
        requested_week,
        cast((isodow(requested_at_local) - 1) * 24 + hour(requested_at_local) as integer) as hour_of_week,
        is_staff_initiated,
        exclusion_reason = 'closed_on_creation' as is_closed_on_creation

    from group_requests
    where
        {{ is_demand() }}
        and requested_at_local is not null

),

hours as (

    select cast(series.hour_of_week as integer) as hour_of_week
    from range(168) as series (hour_of_week)

),

grid as (

    select
        affected_groups.city_id,
        affected_groups.category_id,
        hours.hour_of_week

    from affected_groups
    cross join hours

),

cell_counts as (

    select
        city_id,
        category_id,
        hour_of_week,
        count(*) as requests,
        count(*) filter (where is_staff_initiated) as staff_initiated_requests,
        count(*) filter (where is_closed_on_creation) as closed_on_creation_requests

    from demand
    group by city_id, category_id, hour_of_week

),

group_spans as (

    select
        city_id,
        category_id,
        count(*) as group_requests,
        date_diff('week', min(requested_week), max(requested_week)) + 1 as weeks_observed

    from demand
    group by city_id, category_id

),

final as (

    select
        grid.city_id,
        grid.category_id,
        grid.hour_of_week,
        cast(grid.hour_of_week // 24 + 1 as integer) as day_of_week,
        -- by position, so the names never depend on the session's locale
        ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'][
            grid.hour_of_week // 24 + 1
        ] as day_name,
        cast(grid.hour_of_week % 24 as integer) as hour_of_day,
        coalesce(cell_counts.requests, 0) as requests,
        coalesce(cell_counts.staff_initiated_requests, 0) as staff_initiated_requests,
        coalesce(cell_counts.closed_on_creation_requests, 0) as closed_on_creation_requests,
        coalesce(cell_counts.requests / group_spans.group_requests, 0.0) as share_of_week,
        cast(coalesce(group_spans.weeks_observed, 0) as integer) as weeks_observed,
        coalesce(cell_counts.requests, 0) / group_spans.weeks_observed as requests_per_week_average

    from grid
    left join cell_counts
        on grid.city_id = cell_counts.city_id
            and grid.category_id = cell_counts.category_id
            and grid.hour_of_week = cell_counts.hour_of_week
    left join group_spans
        on grid.city_id = group_spans.city_id
            and grid.category_id = group_spans.category_id

)

select * from final
