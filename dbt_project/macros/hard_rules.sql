{#- Hard rules of the canonical model: a staged request that breaks one cannot be
    modelled, so it goes to quarantine.service_requests with the rule's name
    instead of int_service_requests. Rules that only flag a request (a close
    before the open, a date in the future) are counted by the marts instead; the
    GX suites fail a partition where too many requests break them.
    Each rule: its name, and a condition on the staged row that is true when the
    row breaks it. -#}
{% macro hard_rules() %}
    {{ return([
        {'rule': 'missing_requested_at', 'breaks': 'requested_at is null'},
    ]) }}
{% endmacro %}


{#- True when the row breaks no hard rule. -#}
{% macro keeps_hard_rules() -%}
    not ({% for rule in hard_rules() %}coalesce({{ rule.breaks }}, false){% if not loop.last %} or {% endif %}{% endfor %})
{%- endmacro %}
