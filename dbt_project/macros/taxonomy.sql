{#- The text a service_type_rules pattern is tried on: the type and its subtype,
    `service_name / service_subtype`, with every underscore read as a space (SF
    writes Illegal_Dumping), so that `\b` marks a word's ends in every city's
    spelling. Null when the request has no type: no rule matches it. -#}
{% macro service_type_rule_text(service_name, service_subtype) -%}
    replace({{ service_name }} || ' / ' || coalesce({{ service_subtype }}, ''), '_', ' ')
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
