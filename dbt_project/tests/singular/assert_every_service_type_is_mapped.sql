{#- One row per loaded (city, service type, subtype) that service_type_categories
    does not map, neither by its exact subtype nor by an any-subtype row. A
    request with no service type at all has nothing to map and is not listed. -#}
{#- Shown in Dagster as a check on int_service_requests, the model it guards. -#}
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'int_service_requests'}}}) }}

{% set unmapped %}
with

requests as (

    select city_id, service_name, service_subtype
    from {{ ref('int_service_requests') }}
    where service_name is not null

),

service_types as (

    select city_id, service_name, service_subtype, count(*) as requests
    from requests
    group by city_id, service_name, service_subtype

),

final as (

    select
        service_types.city_id,
        service_types.service_name,
        service_types.service_subtype,
        service_types.requests
    from service_types
    {{ join_service_category('service_types') }}
    where {{ service_category_id() }} is null

)

select * from final
order by city_id, service_name, service_subtype
{% endset %}

{{ log_unmapped(unmapped, 'service type') }}
{{ unmapped }}
