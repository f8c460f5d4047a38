{#- Use the layer's schema as is (staging, intermediate, marts) instead of
    dbt's default "<target schema>_<custom schema>", so BI users see short names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
