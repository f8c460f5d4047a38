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


{#- The CTEs an area mart reads int_request_areas through: `request_areas`, each
    request's area in each layer, and `layer_versions`, the version of each
    (city, layer) the requests are placed on (int_request_areas rejoins a whole
    layer when its version moves). Ends with a comma: more CTEs follow. -#}
{% macro request_area_ctes() -%}
request_areas as (

    select city_id, request_id, layer, area_id, layer_version
    from {{ ref('int_request_areas') }}

),

layer_versions as (

    select city_id, layer, any_value(layer_version) as layer_version
    from request_areas
    group by city_id, layer

),
{%- endmacro %}


{#- For an incremental area mart: the (city, period)s to recompute because their
    requests moved between areas, not because they changed. Each mart row
    records the version of its layer (int_request_areas.layer_version), so a
    run finds, whatever ran before it: the periods of the previous build on a
    layer version the city no longer has (a layer whose boundaries changed, or
    that the city dropped), and every period of a city that has a layer the
    previous build lacks (a new layer). `facts` has (city_id, <period>) per
    request; `layer_versions` has (city_id, layer, layer_version). -#}
{% macro periods_with_moved_areas(period, facts='fct', layer_versions='layer_versions') -%}
    select previous_build.city_id, previous_build.{{ period }}
    from {{ this }} as previous_build
    left join {{ layer_versions }}
        on previous_build.city_id = {{ layer_versions }}.city_id
        and previous_build.layer = {{ layer_versions }}.layer
    where previous_build.layer_version is distinct from {{ layer_versions }}.layer_version

    union

    select {{ facts }}.city_id, {{ facts }}.{{ period }}
    from {{ facts }}
    semi join (
        select {{ layer_versions }}.city_id
        from {{ layer_versions }}
        anti join (select distinct city_id, layer from {{ this }}) as built
            on {{ layer_versions }}.city_id = built.city_id
            and {{ layer_versions }}.layer = built.layer
    ) as new_layers
        on {{ facts }}.city_id = new_layers.city_id
{%- endmacro %}


{#- geography.boundaries' reported_code column, or a typed null when the table was
    loaded before layers could name one (the next boundary load adds it). -#}
{% macro boundaries_reported_code() -%}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(source('geography', 'boundaries')) -%}
            {%- do columns.append(column.name | lower) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ 'reported_code' if 'reported_code' in columns else 'cast(null as varchar) as reported_code' }}
{%- endmacro %}


{#- Every area of every boundary layer, (city_id, layer, area_id): what a city's
    reported code is checked against. No rows before the first boundary load. -#}
{% macro boundary_areas() -%}
    {%- if geography_loaded() -%}
    select city_id, layer, area_id from {{ source('geography', 'boundaries') }}
    {%- else -%}
    {{ no_rows(['city_id', 'layer', 'area_id']) }}
    {%- endif -%}
{%- endmacro %}
