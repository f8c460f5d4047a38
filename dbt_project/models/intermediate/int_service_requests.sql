{#- The union point of every city's staging model, in the canonical schema.
    A city whose raw feed has never loaded contributes zero rows. The cities are
    the registry's (the var `cities`, macros/city_feeds.sql). A request that breaks a hard rule
    (macros/hard_rules.sql) is left out here and kept in quarantine.service_requests.

    A table, written once per run: a view made every model, snapshot and test that
    reads it parse and deduplicate all of every city's raw rows again (about ten
    times a run, each a few seconds per million requests). -#}

{{ config(materialized='table') }}

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
