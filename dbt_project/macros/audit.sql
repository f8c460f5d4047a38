{#- Pieces the audit models (models/audit) share. An audit model sets a model's
    rows (`mart`) beside counts recomputed from the facts (`facts`) with a full
    join on the group keys, so a group of the facts the model lacks shows as a
    row with in_mart false. -#}

{#- Each key, from whichever side has the row: `coalesce(mart.k, facts.k) as k`. -#}
{% macro audit_keys(keys) -%}
    {%- for key in keys %}
        coalesce(mart.{{ key }}, facts.{{ key }}) as {{ key }},
    {%- endfor %}
{%- endmacro %}

{#- The keys, then whether the model has the row (false: a group of the facts
    the model lacks). -#}
{% macro audit_group(keys) -%}
        {{- audit_keys(keys) }}
        mart.city_id is not null as in_mart,
{%- endmacro %}

{#- The model's rows beside the facts' groups: a full join of the CTEs `mart` and
    `facts` on every key. -#}
{% macro audit_mart_beside_facts(keys) -%}
    from mart
    full join facts
        on {{ audit_keys_match(keys) }}
{%- endmacro %}

{#- The join condition of two relations on every key. -#}
{% macro audit_keys_match(keys, left='mart', right='facts') -%}
    {%- set matches = [] -%}
    {%- for key in keys -%}
        {%- do matches.append(left ~ '.' ~ key ~ ' = ' ~ right ~ '.' ~ key) -%}
    {%- endfor -%}
    {{ matches | join('\n        and ') }}
{%- endmacro %}

{#- The requests of fct_service_requests per group, as fct_requests; with
    `demand_only`, only demand requests (macros/demand.sql). -#}
{% macro audit_fact_counts(keys, demand_only=false, counted_as='fct_requests') -%}
    select {{ keys | join(', ') }}, count(*) as {{ counted_as }}
    from {{ ref('fct_service_requests') }}
    {% if demand_only %}where {{ is_demand() }}
    {% endif %}group by {{ keys | join(', ') }}
{%- endmacro %}

{#- An area mart (mart_service_gaps, mart_hotspots): its rows with the requests
    of their (city, layer, category, period) over all areas of the layer, and the
    facts' requests per (city, category, period) repeated for each of the city's
    layers (dim_area), since every layer counts each request of its city once.
    Defines the CTEs `mart` and `facts`. -#}
{% macro audit_area_layers(mart_model, period, demand_only=false) -%}
mart as (

    select
        *,
        sum(requests) over (partition by city_id, layer, category_id, {{ period }}) as layer_requests

    from {{ ref(mart_model) }}

),

layers as (

    select distinct city_id, layer
    from {{ ref('dim_area') }}

),

fact_groups as (

    {{ audit_fact_counts(['city_id', 'category_id', period], demand_only=demand_only) }}

),

facts as (

    select fact_groups.*, layers.layer
    from fact_groups
    inner join layers on fact_groups.city_id = layers.city_id

)
{%- endmacro %}

{#- The CTE `facts`: the requests of fct_service_requests per group of `keys`. -#}
{% macro audit_facts(keys) -%}
facts as (

    {{ audit_fact_counts(keys) }}

)
{%- endmacro %}

{#- The first columns of an area mart's audit: its keys, whether the mart has the
    row, and the requests of the row, of its layer and of the facts. -#}
{% macro audit_area_counts(period) -%}
        {{- audit_keys(['city_id', 'layer']) }}
        mart.area_id,
        {{- audit_keys(['category_id', period]) }}
        mart.city_id is not null as in_mart,
        mart.requests,
        mart.layer_requests,
        coalesce(facts.fct_requests, 0) as fct_requests
{%- endmacro %}

{#- Columns of a response-time mart's audit (mart_response_times,
    mart_response_times_by_type), in three parts. The counts: the keys, whether the
    mart has the row, the facts' requests and the row's, and counted_plus_excluded
    (every request counted or excluded for one reason). -#}
{% macro audit_response_time_counts(keys) -%}
        {{- audit_group(keys) }}
        coalesce(facts.fct_requests, 0) as fct_requests,
        mart.requests,
        mart.counted_requests
            + mart.excluded_information_only
            + mart.excluded_duplicate
            + mart.excluded_invalid_duration
            + mart.excluded_staff_initiated
            + mart.excluded_closed_on_creation as counted_plus_excluded
{%- endmacro %}

{#- The durations every response-time mart has. -#}
{% macro audit_response_time_durations() -%}
        mart.counted_requests,
        mart.valid_closed_requests,
        mart.median_hours_to_close,
        mart.p90_hours_to_close,
        mart.km_median_hours_to_close
{%- endmacro %}

{#- The backlog: every open request in one age bucket, the SLA figures, and the
    city's as-of (`cities`, dim_city) on exactly the groups with open requests. -#}
{% macro audit_response_time_backlog() -%}
        mart.open_requests,
        mart.open_0_1_days
            + mart.open_1_3_days
            + mart.open_3_7_days
            + mart.open_7_30_days
            + mart.open_30_plus_days as open_in_age_buckets,
        mart.sla_requests,
        mart.closed_within_sla_requests,
        mart.pct_closed_within_sla,
        case
            when mart.city_id is null then null
            -- settled (no figure moves with the clock any more): every open request
            -- is in the last backlog bucket
            when mart.open_requests > 0 and mart.as_of is null
                then mart.open_30_plus_days = mart.open_requests
                    and coalesce(mart.figures_settled_at <= cities.as_of, false)
            when mart.open_requests > 0 then mart.as_of = cities.as_of and mart.figures_settled_at is null
            else mart.as_of is null and mart.figures_settled_at is null
        end as as_of_shown_when_open
{%- endmacro %}
