{#- The union point of every city's staging model, in the canonical schema.
    A city whose raw feed has never loaded contributes zero rows. dbt needs its
    refs spelled out at parse time, so the list is explicit; a unit test checks
    it names every staging model under models/staging/. -#}
{%- set staging_models = [
    'stg_chicago__service_requests',
    'stg_la__service_requests',
    'stg_nyc__service_requests',
    'stg_sf__service_requests',
    'stg_boston__service_requests',
    'stg_detroit__service_requests',
    'stg_jersey_city__service_requests',
    'stg_chicago_open311__service_requests',
    'stg_bloomington__service_requests',
    'stg_toronto__service_requests',
    'stg_boston_open311__service_requests',
] -%}

with

unioned as (

    {% for staging_model in staging_models %}
    select {{ canonical_columns() | join(', ') }}
    from {{ ref(staging_model) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from unioned
