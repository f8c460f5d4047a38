{#- Kaplan–Meier median time to an event, per group.

    `kaplan_meier_median(relation, group_by)` expands to a `with ... select`
    query (use it as a CTE body: `km as ( {{ kaplan_meier_median('durations',
    ['city_id']) }} )`) over `relation`, which holds the group_by columns plus
    duration_hours (double, >= 0) and is_event (true: the event happened at
    duration_hours; false: still waiting, censored at duration_hours). Rows
    with a null duration_hours or is_event are ignored.

    It returns one row per group: the group_by columns and km_median_hours,
    the smallest event time t at which S(t) = prod over event times u <= t of
    (1 - d_u / n_u) drops to 0.5 or below, where d_u counts the events at u
    and n_u the rows with duration_hours >= u (so rows censored at u are still
    at risk at u). Null when S never reaches 0.5. A null group value is a
    group of its own, as in `group by`. With it, km_youngest_censored_hours
    (null without censored rows) and km_median_settled: whether the median
    stays as it is however far the censored rows age, their events unchanged.
    It does when the youngest censored row is at least as old as the median,
    or as the longest event (or there is none): a censored row counts in the
    risk set of every event time up to its age, so ageing it leaves the curve
    up to that age, and so the median (or the whole curve), as it was.
    km_settles_at_age_hours is that age: the median, else the longest event,
    else 0. A group is settled from the instant its youngest censored row
    reaches it on, and stays settled at any later one.

    How: one sort of the rows per group, by duration_hours with events before
    rows censored at the same time. The row at position k of a group's n is
    then one of the n - k + 1 still at risk, and S after it is the product of
    (1 - 1 / at risk) over the events up to it: the d events at u multiply to
    (n_u - d_u) / n_u, the same factor as grouping them (the first ran on
    grouped times and two windows sorted in opposite directions, about 1.5
    times as long). A product window rather than exp(sum(ln)): a factor of 0
    (every row still at risk has its event at u) must drive S to exactly 0.
    The 1e-9 slack absorbs float error where S lands exactly on 0.5 (e.g.
    0.75 * 2/3). -#}
{% macro kaplan_meier_median(relation, group_by) -%}
    {%- set groups = group_by | join(', ') -%}
    {%- set partition = ('partition by ' ~ groups) if group_by else '' -%}
    {%- set leading = (groups ~ ', ') if group_by else '' -%}
    {%- set order = 'order by duration_hours, is_event desc' -%}
    with

    km_at_risk as (

        select
            {{ leading }}duration_hours,
            is_event,
            count(*) over ({{ partition }})
            - row_number() over ({{ partition }} {{ order }})
            + 1 as at_risk

        from {{ relation }}
        where duration_hours is not null and is_event is not null

    ),

    km_survival as (

        select
            *,
            product(case when is_event then 1 - 1.0 / at_risk else 1.0 end) over (
                {{ partition }}
                {{ order }}
                rows between unbounded preceding and current row
            ) as survival

        from km_at_risk

    ),

    km_groups as (

        select
            {{ leading }}min(duration_hours) filter (where is_event and survival <= 0.5 + 1e-9) as km_median_hours,
            min(duration_hours) filter (where not is_event) as km_youngest_censored_hours,
            max(duration_hours) filter (where is_event) as longest_event_hours

        from km_survival
        {% if group_by %}group by {{ groups }}{% endif %}

    )

    select
        {{ leading }}km_median_hours,
        km_youngest_censored_hours,
        -- the median is never after the longest event
        coalesce(km_median_hours, longest_event_hours, 0) as km_settles_at_age_hours,
        km_youngest_censored_hours is null
        or km_settles_at_age_hours <= km_youngest_censored_hours as km_median_settled

    from km_groups
{%- endmacro %}
