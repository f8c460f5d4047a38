{#- The delete+insert incremental strategy on DuckDB, with the delete joined to the
    new rows' distinct keys. dbt-duckdb joins the target to the new rows
    themselves: a mart keyed by (city_id, requested_week) has thousands of rows
    per key on both sides, so that join paired every old row of a week with
    every new one, and a one-day refresh spent two minutes deleting 1M rows of
    mart_hotspots. The rows deleted and inserted are the same. -#}
{% macro duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}

    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}

    {% if keys %}
        delete from {{ target }} as DBT_INCREMENTAL_TARGET
        using (
            select distinct {{ keys | join(', ') }}
            from {{ source }}
        ) as DBT_INCREMENTAL_KEYS
        where (
            {% for key in keys %}
                DBT_INCREMENTAL_KEYS.{{ key }} = DBT_INCREMENTAL_TARGET.{{ key }}
                {{ "and " if not loop.last }}
            {% endfor %}
            {% if incremental_predicates %}
                {% for predicate in incremental_predicates %}
                    and {{ predicate }}
                {% endfor %}
            {% endif %}
        );
    {% endif %}

    insert into {{ target }} ({{ dest_cols_csv }})
    (
        select {{ dest_cols_csv }}
        from {{ source }}
    )

{%- endmacro %}
