{#- The weekly spike test shared by mart_hotspots (per area and category) and
    mart_department_joint_spikes (per area and department). Its definition in
    words is in those models' YAML; these macros are its one implementation. -#}


{#- The test's constants: the baseline is the 8 weeks before a week; the
    Poisson rate is floored at one request in the baseline (1/8); a week spikes
    when P(X >= requests) < 0.01 with at least 5 requests. Read them in a model
    as `{% set rule = weekly_spike_rule() %}` ... `rule.baseline_weeks`. -#}
{% macro weekly_spike_rule() -%}
    {%- set baseline_weeks = 8 -%}
    {{- return({
        'baseline_weeks': baseline_weeks,
        'lambda_floor': 1.0 / baseline_weeks,
        'significance': 0.01,
        'min_requests': 5,
    }) -}}
{%- endmacro %}


{#- The first week with a full baseline, given a city's first demand week (a
    SQL date expression): a week is tested from here on, when its 8 baseline
    weeks all lie within the city's data. -#}
{% macro first_full_baseline_week(first_week) -%}
    ({{ first_week }} + to_weeks({{ weekly_spike_rule().baseline_weeks }}))
{%- endmacro %}


{#- Each (city_id, requested_week) of `relation` and the weeks one baseline
    away, as a `select distinct` of those two columns:
      direction 'after'    the week and the 8 weeks after it: the weeks whose
                           baseline holds it, so whose test a change in it moves
      direction 'before'   the week and the 8 weeks before it: the weeks its
                           test reads -#}
{% macro baseline_reach(relation, direction) -%}
    {%- set sign = {'after': '+', 'before': '-'}[direction] -%}
    select distinct
        {{ relation }}.city_id,
        cast({{ relation }}.requested_week {{ sign }} to_weeks(offsets.weeks) as date) as requested_week

    from {{ relation }}
    cross join range({{ weekly_spike_rule().baseline_weeks + 1 }}) as offsets (weeks)
{%- endmacro %}


{#- The weekly spike test, as a `with ... select` query (use it as a CTE body:
    `scored as ( {{ weekly_spike_test('demand', ['area_id'], 'city_starts',
    'context_weeks') }} )`).

    demand        one row per demand request: city_id, the group_by columns
                  and requested_week (the Monday of its city-local week)
    group_by      the columns that, with city_id, name a tested series
    city_starts   one row per city: city_id and first_week, the city's first
                  demand week
    weeks         the (city_id, requested_week)s to count; a week is tested
                  right only when its 8 weeks before are among them

    One row per (city, group, week) with demand: requests; baseline_requests,
    the series' requests in weeks w-8 to w-1 (a week without a row counts 0);
    has_full_baseline (first_full_baseline_week); baseline_mean (/ 8);
    poisson_lambda (the larger of baseline_mean and 1/8); poisson_p, P(X >=
    requests) under Poisson(poisson_lambda), null without a full baseline; and
    is_spike (poisson_p < 0.01 and requests >= 5, false otherwise). -#}
{% macro weekly_spike_test(demand, group_by, city_starts, weeks) -%}
    {%- set rule = weekly_spike_rule() -%}
    {%- set groups = group_by | join(', ') -%}
    with

    spike_weekly as (

        select
            city_id,
            {{ groups }},
            requested_week,
            count(*) as requests,
            -- weeks since a Monday, so the baseline window can be a RANGE frame
            date_diff('day', date '2000-01-03', requested_week) // 7 as week_number

        from {{ demand }}
        semi join {{ weeks }} using (city_id, requested_week)
        group by city_id, {{ groups }}, requested_week

    ),

    spike_baselined as (

        select
            *,
            -- a week with no row had no demand: it adds 0 to the sum
            coalesce(sum(requests) over (
                partition by city_id, {{ groups }}
                order by week_number
                range between {{ rule.baseline_weeks }} preceding and 1 preceding
            ), 0) as baseline_requests

        from spike_weekly

    ),

    spike_rated as (

        select
            spike_baselined.*,
            spike_baselined.requested_week
                >= {{ first_full_baseline_week(city_starts ~ '.first_week') }} as has_full_baseline,
            spike_baselined.baseline_requests / {{ rule.baseline_weeks }} as baseline_mean,
            greatest(
                spike_baselined.baseline_requests / {{ rule.baseline_weeks }}, {{ rule.lambda_floor }}
            ) as poisson_lambda

        from spike_baselined
        inner join {{ city_starts }} on spike_baselined.city_id = {{ city_starts }}.city_id

    ),

    -- the tail once per distinct (requests, rate): a few thousand pairs, where
    -- the rows are millions and each tail sums dozens of terms
    spike_pairs as (

        select distinct
            requests,
            poisson_lambda

        from spike_rated
        where has_full_baseline

    ),

    spike_tails as (

        select
            requests,
            poisson_lambda,
            {{ poisson_upper_tail('requests', 'poisson_lambda') }} as poisson_p

        from spike_pairs

    ),

    spike_scored as (

        select
            spike_rated.*,
            case when spike_rated.has_full_baseline then spike_tails.poisson_p end as poisson_p

        from spike_rated
        left join spike_tails
            on spike_rated.requests = spike_tails.requests
                and spike_rated.poisson_lambda = spike_tails.poisson_lambda

    )

    select
        *,
        coalesce(poisson_p < {{ rule.significance }} and requests >= {{ rule.min_requests }}, false) as is_spike

    from spike_scored
{%- endmacro %}
