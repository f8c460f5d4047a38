{#- Whether the boundary tables exist yet (the Dagster asset geography/boundaries
    creates them). Before the first boundary load, int_request_areas places
    requests by ZIP and H3 cell only. -#}
{% macro geography_loaded() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set table = source('geography', 'boundaries') -%}
    {%- set relation = adapter.get_relation(database=table.database, schema=table.schema, identifier=table.identifier) -%}
    {{ return(relation is not none) }}
{%- endmacro %}


{#- Post-hook of int_request_areas: rows of a boundary layer the city no longer
    declares are deleted, so the marts stop counting it. -#}
{% macro delete_removed_layers() -%}
    delete from {{ this }} as joined
    where joined.layer not in ('zip', 'h3')
    {%- if geography_loaded() %}
        and not exists (
            select 1 from {{ source('geography', 'boundaries') }} as boundaries
            where boundaries.city_id = joined.city_id and boundaries.layer = joined.layer
        )
    {%- endif %}
{%- endmacro %}


{#- A typed empty relation with these text columns: what a geography CTE reads
    before the first boundary load. -#}
{% macro no_rows(columns) -%}
    select {% for column in columns %}cast(null as varchar) as {{ column }}{{ ", " if not loop.last }}{% endfor %}
    where false
{%- endmacro %}


{#- For an incremental area mart: the (city, period)s to recompute because their
    requests moved between areas, not because they changed. The periods holding a
    request int_request_areas rejoined in this run (a layer whose boundaries
    changed), and those holding rows of a layer the city no longer has (their
    rows go with the period's rewrite). `facts` and `areas` name CTEs of the
    model with (city_id, request_id, <period>) and int_request_areas' rows. -#}
{% macro periods_with_moved_areas(period, facts='fct', areas='request_areas') -%}
    select {{ facts }}.city_id, {{ facts }}.{{ period }}
    from {{ facts }}
    semi join {{ areas }}
        on {{ facts }}.city_id = {{ areas }}.city_id
        and {{ facts }}.request_id = {{ areas }}.request_id
        and {{ areas }}.joined_in_run = '{{ invocation_id }}'

    union

    select previous_build.city_id, previous_build.{{ period }}
    from {{ this }} as previous_build
    anti join {{ areas }}
        on previous_build.city_id = {{ areas }}.city_id
        and previous_build.layer = {{ areas }}.layer
{%- endmacro %}
