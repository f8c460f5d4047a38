{#- A demand request, as a SQL condition on a fct_service_requests row: not
    information-only, not a duplicate, and requested_at not before 2000-01-01
    (earlier dates are placeholders). An information-only flag that is null (a
    type with no category yet) counts as demand. The marts' YAML describes the
    rule in words (the `requests` columns of mart_hotspots,
    mart_department_joint_spikes and mart_demand_timing). -#}
{% macro is_demand() -%}
    (
        not coalesce(is_information_only, false)
        and not is_duplicate
        and requested_at >= timestamptz '2000-01-01 00:00:00+00'
    )
{%- endmacro %}
