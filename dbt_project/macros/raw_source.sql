{#- A city's raw feed as staging reads it, tolerant of what the feed has not sent yet.

    `raw_source('nyc', ['service_requests', 'service_requests_export'])` returns
    {'relation': <sql>, 'columns': [...]}:
      - every listed table that exists, unioned by column name (the API feed and
        portal exports carry different column sets), keeping the newest version
        of each source id (the newest change stamp, then the latest load, then
        the table listed first, so a tie always resolves the same way);
      - an empty relation with just the metadata columns when none exists yet,
        so a city that has never loaded still builds (and unions) as zero rows.
    The raw tables are no dbt sources: Dagster owns them (raw/<city>/<table>), and
    its translator draws their lineage to staging (orchestration/assets/transformation.py).

    `keys`, when given, names a relation (a CTE or a subquery) with city_id and
    source_id: only those ids are read, before the newest version is picked, so
    each id gets the version it would get from the whole table; reading a few ids
    this way skips sorting every raw row. -#}
{% macro raw_source(city_id, tables, keys=none) %}
    {%- set found = [] -%}
    {%- set tables_found = [] -%}
    {%- for table in tables -%}
        {%- set relation = raw_relation(city_id, table) -%}
        {%- if execute and load_relation(relation) is not none -%}
            {%- do tables_found.append(relation) -%}
            {%- if keys is none -%}
                {%- do found.append(relation) -%}
            {%- else -%}
                {%- do found.append(
                    '(select * from ' ~ relation ~ ' as raw_rows semi join ' ~ keys ~ ' as raw_keys'
                    ~ ' on raw_rows.city_id = raw_keys.city_id and raw_rows.source_id = raw_keys.source_id)'
                ) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set columns = [] -%}
    {%- for relation in tables_found -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- if column.name | lower not in columns -%}
                {%- do columns.append(column.name | lower) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if found | length == 0 -%}
        {%- set sql -%}
            (select
                cast(null as varchar) as city_id,
                cast(null as varchar) as source_id,
                cast(null as timestamptz) as source_updated_at,
                cast(null as timestamptz) as _loaded_at
            where false)
        {%- endset -%}
        {%- set columns = ['city_id', 'source_id', 'source_updated_at', '_loaded_at'] -%}
    {%- elif found | length == 1 -%}
        {%- set sql = found[0] -%}
    {%- else -%}
        {%- set sql -%}
            (select * from (
                {%- for relation in found %}
                select *, {{ loop.index }} as _raw_table_rank from {{ relation }}
                {% if not loop.last %}union all by name{% endif %}
                {%- endfor %}
            )
            qualify row_number() over (
                partition by city_id, source_id
                order by source_updated_at desc nulls last, _loaded_at desc, _raw_table_rank
            ) = 1)
        {%- endset -%}
    {%- endif -%}
    {{ return({'relation': sql, 'columns': columns}) }}
{% endmacro %}



{#- The raw feed a city's staging model reads. A staging model is a table, kept
    incrementally (staged_city): on an incremental run with a window it reads only
    the ids with a raw row stamped in the window (source_updated_at, with the
    lookback, or no stamp at all), each at the version the whole feed gives it,
    and replaces their rows; otherwise every raw row. So the parse and the
    newest-version pick of millions of raw rows happen once per row, not in every
    run. -#}
{% macro staged_raw(city) %}
    {%- set keys = [] -%}
    {%- if is_incremental() and run_window() -%}
        {%- for table in city.raw_tables -%}
            {%- set relation = raw_relation(city.id, table) -%}
            {%- if load_relation(relation) is not none -%}
                {%- do keys.append(
                    'select city_id, source_id from ' ~ relation
                    ~ ' where source_updated_at is null or ' ~ changed_in_window('source_updated_at')
                ) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if keys -%}
        {{ return(raw_source(city.id, city.raw_tables, keys='(' ~ keys | join(' union ') ~ ')')) }}
    {%- endif -%}
    {{ return(raw_source(city.id, city.raw_tables)) }}
{% endmacro %}

{#- One raw field, cast to `type`, or a typed null when the feed has never sent it.
    Values dlt parked in variant columns (`lat__v_text` when `lat` is double) are
    read too, so type drift upstream never blanks a field. -#}
{% macro raw_field(raw, name, type='varchar') -%}
    {%- set candidates = [] -%}
    {%- for column in raw.columns -%}
        {%- if column == name or column.startswith(name ~ '__v_') -%}
            {%- do candidates.append(column) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if candidates | length == 0 -%}
        cast(null as {{ type }})
    {%- elif candidates | length == 1 and type == 'varchar' -%}
        nullif(trim(cast("{{ candidates[0] }}" as varchar)), '')
    {%- else -%}
        coalesce(
            {%- for column in candidates %}
            try_cast(nullif(trim(cast("{{ column }}" as varchar)), '') as {{ type }}){% if not loop.last %},{% endif %}
            {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}
