{#- dbt reports only how many rows a failing test returned; this logs the rows
    themselves, so the output names what to look at. Only a command that runs
    the tests queries: compiling (`dbt compile`, sqlfluff) needs no warehouse. -#}
{% macro log_rows(sql, what) %}
    {% if execute and flags.WHICH in ('build', 'test') %}
        {% set found = run_query(sql) %}
        {% for row in found.rows %}
            {% set fields = [] %}
            {% for column in found.column_names %}
                {% do fields.append(column ~ '=' ~ row[column]) %}
            {% endfor %}
            {% do log(what ~ ': ' ~ (fields | join(', ')), info=True) %}
        {% endfor %}
    {% endif %}
{% endmacro %}
