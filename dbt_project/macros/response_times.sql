{#- The body of the response-time marts: requests of fct_service_requests grouped
    by city, requested_month and `group_by`, with the counts, exclusions, medians,
    Kaplan–Meier median, open backlog and SLA share mart_response_times defines.
    `carried` columns are functions of the group (a type's name and category) and
    ride along. With `spread`, the quartiles, extremes and outliers beyond 1.5
    IQR of the valid closed counted requests as well.

    Incremental: a run recomputes whole (city, month) periods: those holding a
    request that changed in the partition window, and, on an incremental run,
    those whose figures may still move with the as-of time alone: a period with
    a row showing an as_of, or with an invalid duration (fct re-checks
    date_in_future every run, so such a request may have become valid without
    changing upstream); and those whose settled rows no longer hold at the
    city's as-of, or that hold a request now dated in the future
    (macros/as_of.sql).

    A group's figures stop moving with the clock once its youngest open request
    is 30 days old (every open request is in the last backlog bucket for good)
    and at least as old as its Kaplan–Meier median, or as its longest closed
    duration: a censored request only counts in the risk sets of the event times
    up to its age, so ageing it further leaves the curve up to the median (or
    the whole curve) as it was. Such a row shows no as_of but the instant it
    settled (figures_settled_at), and is not recomputed until one of its
    requests changes, or the city's as-of moves back before that instant: in a
    city with years of history, the old months' few never-closed requests no
    longer make every month recompute every day. A full refresh gives the same
    rows. -#}
{% macro response_time_figures(group_by, carried=[], spread=false) -%}
{%- set keys = ['city_id'] + group_by + ['requested_month'] -%}
{%- set columns = ['city_id'] + group_by + carried + ['requested_month'] -%}
{#- No figure moves with the clock any more (the open requests are the censored rows). -#}
{%- set settled = 'kaplan_meier.km_median_settled and kaplan_meier.km_youngest_censored_hours >= 30 * 24' -%}
with

affected_periods as (

    select distinct city_id, requested_month
    from {{ ref('fct_service_requests') }}
    where {{ changed_in_window('updated_at') }}

    {% if is_incremental() %}
    union

    select city_id, requested_month
    from {{ this }}
    where as_of is not null or excluded_invalid_duration > 0

    union

    {{ periods_to_recompute_for_the_clock('requested_month') }}
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
        {% for column in group_by + carried -%}
        requests.{{ column }},
        {% endfor -%}
        requested_month,
        requested_at,
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
        {{ keys | join(', ') }},
        coalesce(hours_to_close, hours_since_requested) as duration_hours,
        hours_to_close is not null as is_event

    from classified
    where is_counted

),

kaplan_meier as (

    {{ kaplan_meier_median('durations', keys) }}

),

aggregated as (

    select
        {{ columns | join(',\n        ') }},
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
        {% if spread -%}
        quantile_cont(hours_to_close, 0.25) filter (where is_counted) as q1_hours_to_close,
        quantile_cont(hours_to_close, 0.75) filter (where is_counted) as q3_hours_to_close,
        min(hours_to_close) filter (where is_counted) as min_hours_to_close,
        max(hours_to_close) filter (where is_counted) as max_hours_to_close,
        {% endif -%}
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
        -- only open requests are measured against the as-of
        max(as_of) filter (where is_open) as as_of,
        max(requested_at) filter (where is_open) as youngest_open_requested_at

    from classified
    group by {{ columns | join(', ') }}

),

{% if spread -%}
outliers as (

    {#- Tukey's fences on the group's own quartiles. #}
    select
        {% for key in keys -%}
        classified.{{ key }},
        {% endfor -%}
        count(*) filter (
            where classified.hours_to_close
                < aggregated.q1_hours_to_close - 1.5 * (aggregated.q3_hours_to_close - aggregated.q1_hours_to_close)
            or classified.hours_to_close
                > aggregated.q3_hours_to_close + 1.5 * (aggregated.q3_hours_to_close - aggregated.q1_hours_to_close)
        ) as outlier_requests

    from classified
    inner join aggregated
        on {% for key in keys -%}
        classified.{{ key }} = aggregated.{{ key }}{% if not loop.last %}
        and {% endif %}
        {%- endfor %}
    where classified.is_counted and classified.hours_to_close is not null
    group by all

),
{%- endif %}

final as (

    select
        {% for column in columns -%}
        aggregated.{{ column }},
        {% endfor -%}
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
        {% if spread -%}
        aggregated.q1_hours_to_close,
        aggregated.q3_hours_to_close,
        aggregated.min_hours_to_close,
        aggregated.max_hours_to_close,
        coalesce(outliers.outlier_requests, 0) as outlier_requests,
        {% endif -%}
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
        case
            when {{ settled }} then null
            else aggregated.as_of
        end as as_of,
        case
            when aggregated.open_requests > 0 and {{ settled }}
                then {{ settled_from(
                    'aggregated.youngest_open_requested_at',
                    'greatest(30 * 24, kaplan_meier.km_settles_at_age_hours)'
                ) }}
        end as figures_settled_at

    from aggregated
    left join kaplan_meier
        on {% for key in keys -%}
        aggregated.{{ key }} = kaplan_meier.{{ key }}{% if not loop.last %}
        and {% endif %}
        {%- endfor %}
    {% if spread -%}
    left join outliers
        on {% for key in keys -%}
        aggregated.{{ key }} = outliers.{{ key }}{% if not loop.last %}
        and {% endif %}
        {%- endfor %}
    {%- endif %}

)

select * from final
{%- endmacro %}
