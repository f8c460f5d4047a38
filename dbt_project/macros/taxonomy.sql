{#- The category rule, written once for the marts and the tests. A request
    takes the category of the row with its exact subtype, else of the row for
    any subtype (service_subtype null in the seed: seeds load an empty string
    as null). -#}
{% macro join_service_category(requests) %}
    left join {{ ref('service_type_categories') }} as exact_subtype_category
        on exact_subtype_category.city_id = {{ requests }}.city_id
        and exact_subtype_category.service_name = {{ requests }}.service_name
        and exact_subtype_category.service_subtype = {{ requests }}.service_subtype
    left join {{ ref('service_type_categories') }} as any_subtype_category
        on any_subtype_category.city_id = {{ requests }}.city_id
        and any_subtype_category.service_name = {{ requests }}.service_name
        and any_subtype_category.service_subtype is null
{% endmacro %}

{% macro service_category_id() -%}
    coalesce(exact_subtype_category.category_id, any_subtype_category.category_id)
{%- endmacro %}

{#- dbt reports only how many rows a failing test returned; this logs the rows
    themselves, so the output says which types or departments to map. -#}
{% macro log_unmapped(sql, what) %}
    {% if execute %}
        {% set found = run_query(sql) %}
        {% for row in found.rows %}
            {% set fields = [] %}
            {% for column in found.column_names %}
                {% do fields.append(column ~ '=' ~ row[column]) %}
            {% endfor %}
            {% do log('unmapped ' ~ what ~ ': ' ~ (fields | join(', ')), info=True) %}
        {% endfor %}
    {% endif %}
{% endmacro %}
