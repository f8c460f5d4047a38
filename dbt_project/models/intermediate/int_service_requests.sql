{#- The union point of every city's staging model, in the canonical schema.
    A city whose raw feed has never loaded contributes zero rows. The cities are
    the registry's (the var `cities`, macros/city_feeds.sql). A request that breaks a hard rule
    (macros/hard_rules.sql) is left out here and kept in quarantine.service_requests.

    A view: the staging models are tables, each request parsed and picked once
    among its raw versions, so reading this view scans them and no more. (As a
    table it was rewritten in full every run: 22 s at 5M requests.) -#}

with

unioned as (

    {% for city in city_feeds() %}
    select {{ canonical_columns() | join(', ') }}
    from {{ ref('stg_' ~ city.id ~ '__service_requests') }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from unioned
where {{ keeps_hard_rules() }}
