{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['city_id', 'requested_month'],
        on_schema_change='fail',
    )
}}

{#- How much slower an area is served than its city, per (city, layer, area,
    category, month); the area of each request in each layer comes from
    int_request_areas. The city-wide figures are taken once per (city,
    category, month) over the requests themselves, not over their rows per
    layer. An incremental run recomputes, in every layer, the (city, month)s
    holding a request that changed in the partition window, those whose
    figures may move with the clock (a row showing an as_of, or future-dated
    requests, read from the previous build; a settled row whose
    figures_settled_at is after the city's as-of now; a request now dated in
    the future), those whose rows are on a layer version the city no
    longer has (changed or dropped boundaries) and, for a city with a new
    layer, all its months; and the 3 months after each (the chronic flag looks back over 4 months).
    The months before those are computed too, only to feed that look-back. -#}

{%- set gap_threshold = 1.5 -%}
{%- set gap_min_counted_requests = 5 -%}
{%- set chronic_window_months = 4 -%}
{%- set chronic_min_gap_months = 3 -%}
{#- Both medians settled (macros/survival.sql), and the instants they settle. -#}
{%- set settled = 'city_km.km_median_settled and coalesce(area_km.km_median_settled, true)' -%}
{%- set city_settled_from = settled_from(
    'city_figures.city_youngest_open_requested_at', 'city_km.km_settles_at_age_hours'
) -%}
{%- set area_settled_from = settled_from(
    'area_figures.youngest_open_requested_at', 'area_km.km_settles_at_age_hours'
) -%}

with

fct as (

    select * from {{ ref('fct_service_requests') }}

),

{{ request_area_ctes() }}

changed_months as (

    select
        city_id,
        requested_month
    from fct
    where {{ changed_in_window('updated_at') }}

    {% if is_incremental() %}
    union

    select city_id, requested_month
    from {{ this }}
    where as_of is not null or future_dated_requests > 0

    union

    {{ periods_to_recompute_for_the_clock('requested_month') }}

    union

    {{ periods_with_moved_areas('requested_month') }}
    {% endif %}

),

affected_months as (

    select distinct
        changed_months.city_id,
        cast(
            changed_months.requested_month + to_months(month_offsets.months_after) as date
        ) as requested_month

    from changed_months
    cross join range({{ chronic_window_months }}) as month_offsets (months_after)

),

context_months as (

    select distinct
        affected_months.city_id,
        cast(
            affected_months.requested_month - to_months(month_offsets.months_before) as date
        ) as requested_month

    from affected_months
    cross join range({{ chronic_window_months }}) as month_offsets (months_before)

),

requests as (

    select fct.* exclude (fct.area_id)
    from fct
    semi join context_months using (city_id, requested_month)

),

cities as (

    select
        city_id,
        as_of
    from {{ ref('dim_city') }}

),

timed as (

    select
        requests.*,
        -- a still-open request is censored at its age on its city's as-of clock
        coalesce(
            requests.hours_to_close, {{ hours_between('requests.requested_at', 'cities.as_of') }}
        ) as duration_hours,
        requests.hours_to_close is not null as is_event

    from requests
    left join cities on requests.city_id = cities.city_id

),

durations as (

    select * from timed
    where exclusion_reason is null

),

-- one row per request and layer: the request in its area of each layer (joined
-- once, for the counts and the Kaplan–Meier medians alike)
placed as (

    select
        timed.*,
        request_areas.layer,
        request_areas.area_id
    from timed
    inner join request_areas
        on timed.city_id = request_areas.city_id
            and timed.request_id = request_areas.request_id

),

area_durations as (

    select * from placed
    where exclusion_reason is null

),

area_km as (

    {{ kaplan_meier_median(
        'area_durations', ['city_id', 'layer', 'area_id', 'category_id', 'requested_month']
    ) }}

),

city_km as (

    {{ kaplan_meier_median('durations', ['city_id', 'category_id', 'requested_month']) }}

),

area_figures as (

    select
        city_id,
        layer,
        area_id,
        category_id,
        requested_month,
        count(*) as requests,
        count(*) filter (where exclusion_reason is null) as counted_requests,
        count(*) filter (where exclusion_reason = 'staff_initiated') as excluded_staff_initiated,
        count(*) filter (where exclusion_reason = 'closed_on_creation') as excluded_closed_on_creation,
        count(*) filter (
            where exclusion_reason is null and hours_to_close_null_reason = 'not_closed'
        ) as open_requests,
        count(*) filter (where hours_to_close_null_reason = 'date_in_future') as future_dated_requests,
        quantile_cont(hours_to_close, 0.5) filter (where exclusion_reason is null) as median_hours_to_close,
        max(requested_at) filter (
            where exclusion_reason is null and hours_to_close_null_reason = 'not_closed'
        ) as youngest_open_requested_at

    from placed
    group by city_id, layer, area_id, category_id, requested_month

),

city_figures as (

    select
        city_id,
        category_id,
        requested_month,
        quantile_cont(hours_to_close, 0.5) filter (
            where exclusion_reason is null
        ) as city_median_hours_to_close,
        count(*) filter (
            where exclusion_reason is null and hours_to_close_null_reason = 'not_closed'
        ) as city_open_requests,
        max(requested_at) filter (
            where exclusion_reason is null and hours_to_close_null_reason = 'not_closed'
        ) as city_youngest_open_requested_at

    from requests
    group by city_id, category_id, requested_month

),

areas as (

    select * from {{ ref('dim_area') }}

),

compared as (

    select
        area_figures.*,
        areas.population,
        area_km.km_median_hours as km_median_hours_to_close,
        city_figures.city_median_hours_to_close,
        city_km.km_median_hours as city_km_median_hours_to_close,
        -- the row's Kaplan–Meier medians (the area's and the city's) censor open
        -- requests at the as-of; without any, or once both medians are settled
        -- (macros/survival.sql), no figure of the row moves with it (an area
        -- without counted requests has no median and nothing open)
        case
            when city_figures.city_open_requests > 0 and not ({{ settled }})
                then cities.as_of
        end as as_of,
        -- settled: from the later of the instants the city's and the area's medians settle
        case
            when city_figures.city_open_requests > 0 and {{ settled }}
                then greatest({{ city_settled_from }}, {{ area_settled_from }})
        end as figures_settled_at,
        case
            when city_figures.city_median_hours_to_close > 0
                then area_figures.median_hours_to_close / city_figures.city_median_hours_to_close
        end as median_ratio,
        case
            when city_km.km_median_hours > 0
                then area_km.km_median_hours / city_km.km_median_hours
        end as km_median_ratio

    from area_figures
    left join areas
        on area_figures.city_id = areas.city_id
            and area_figures.layer = areas.layer
            and area_figures.area_id = areas.area_id
    left join area_km
        on area_figures.city_id = area_km.city_id
            and area_figures.layer = area_km.layer
            and area_figures.area_id = area_km.area_id
            and area_figures.category_id = area_km.category_id
            and area_figures.requested_month = area_km.requested_month
    left join city_figures
        on area_figures.city_id = city_figures.city_id
            and area_figures.category_id = city_figures.category_id
            and area_figures.requested_month = city_figures.requested_month
    left join city_km
        on area_figures.city_id = city_km.city_id
            and area_figures.category_id = city_km.category_id
            and area_figures.requested_month = city_km.requested_month
    left join cities
        on area_figures.city_id = cities.city_id

),

indexed as (

    select
        *,
        case
            -- unlocated requests are not a place a service can neglect
            when area_id = 'unlocated' or counted_requests < {{ gap_min_counted_requests }} then null
            when km_median_ratio is not null then km_median_ratio
            -- the area has not closed half its requests where the city has: slower, and the
            -- closed-only ratio (which favours the area with more still open) understates it
            when km_median_hours_to_close is null and city_km_median_hours_to_close is not null
                then median_ratio
        end as gap_index

    from compared

),

flagged as (

    select
        *,
        coalesce(gap_index > {{ gap_threshold }}, false) as is_gap,
        year(requested_month) * 12 + month(requested_month) as month_number

    from indexed

),

chronic as (

    select
        *,
        -- months with no row had no requests, so they count as not gaps
        cast(count(*) filter (where is_gap) over (
            partition by city_id, layer, area_id, category_id
            order by month_number
            range between {{ chronic_window_months - 1 }} preceding and current row
        ) as integer) as gap_months_in_last_4

    from flagged

),

final as (

    select
        chronic.city_id,
        chronic.layer,
        chronic.area_id,
        chronic.category_id,
        chronic.requested_month,
        cast(chronic.requests as integer) as requests,
        cast(chronic.counted_requests as integer) as counted_requests,
        cast(chronic.excluded_staff_initiated as integer) as excluded_staff_initiated,
        cast(chronic.excluded_closed_on_creation as integer) as excluded_closed_on_creation,
        cast(chronic.open_requests as integer) as open_requests,
        cast(chronic.future_dated_requests as integer) as future_dated_requests,
        chronic.population,
        case
            -- demand: the crews' own entries and requests closed on creation are
            -- needs the area had, though no response time
            when chronic.population > 0
                then 1000.0
                    * (
                        chronic.counted_requests
                        + chronic.excluded_staff_initiated
                        + chronic.excluded_closed_on_creation
                    )
                    / chronic.population
        end as requests_per_1000_residents,
        chronic.median_hours_to_close,
        chronic.km_median_hours_to_close,
        chronic.city_median_hours_to_close,
        chronic.city_km_median_hours_to_close,
        chronic.median_ratio,
        chronic.km_median_ratio,
        chronic.gap_index,
        cast({{ gap_threshold }} as double) as gap_threshold,
        chronic.is_gap,
        chronic.gap_months_in_last_4,
        chronic.gap_months_in_last_4 >= {{ chronic_min_gap_months }} as chronically_underserved,
        chronic.as_of,
        chronic.figures_settled_at,
        layer_versions.layer_version

    from chronic
    left join layer_versions
        on chronic.city_id = layer_versions.city_id
            and chronic.layer = layer_versions.layer
    semi join affected_months
        on chronic.city_id = affected_months.city_id
            and chronic.requested_month = affected_months.requested_month

)

select * from final
