{#- A city's floating local wall-clock timestamp (as Socrata delivers it) as an
    instant. DuckDB resolves the nonexistent spring-forward hour by shifting
    forward and the repeated fall-back hour to its first (daylight) occurrence. -#}
{% macro local_to_utc(local_timestamp, timezone) -%}
    timezone('{{ timezone }}', {{ local_timestamp }})
{%- endmacro %}
