{#- A warning, not a failure: one row per loaded (city, service type, subtype)
    that no service_type_categories row maps, with its requests and what the
    rules give it instead (a category and the rule_order that matched, or
    unclassified). The build goes on: the requests stay in every mart under that
    category, and the Dagster check unclassified_share_within_threshold stops a
    window only when too many are unclassified. A request with no service type
    at all has nothing to map and is not listed. -#}
{{ config(severity='warn') }}

{% set unmapped %}
select
    city_id,
    service_name,
    service_subtype,
    requests,
    category_id,
    rule_order
from {{ ref('int_service_types') }}
where seed_category_id is null
    and service_name is not null
order by city_id, service_name, service_subtype
{% endset %}

{{ log_rows(unmapped, 'unmapped service type') }}
{{ unmapped }}
