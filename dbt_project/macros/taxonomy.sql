{#- The text a service_type_rules pattern is tried on: the type and its subtype,
    `service_name / service_subtype`, with every underscore read as a space (SF
    writes Illegal_Dumping), so that `\b` marks a word's ends in every city's
    spelling. Null when the request has no type: no rule matches it. -#}
{% macro service_type_rule_text(service_name, service_subtype) -%}
    replace({{ service_name }} || ' / ' || coalesce({{ service_subtype }}, ''), '_', ' ')
{%- endmacro %}

