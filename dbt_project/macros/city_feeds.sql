{#- The city registry (ingestion/cities.yaml) as dbt reads it: the var `cities`,
    which every dbt call civic311 makes passes (Registry.dbt_vars). Each city:
    id, name, municipality, country, timezone, protocol, id_field, its box
    (south, west, north, east), closed_on_creation_seconds and raw_tables, the
    raw tables its staging model reads. -#}
{% macro city_feeds() %}
    {%- set cities = var('cities', none) -%}
    {%- if cities is none -%}
        {{ exceptions.raise_compiler_error(
            "dbt needs the city registry as the var 'cities'. Run dbt through civic311 "
            ~ "(Dagster, the demo, the tests), or pass it by hand: "
            ~ "dbt build --vars \"$(python -m ingestion.registry)\""
        ) }}
    {%- endif -%}
    {{ return(cities) }}
{% endmacro %}


{#- The registry entry of the city whose staging model is being built, found from
    the model's name (stg_<city>__service_requests). A staging model whose city is
    not in the registry is disabled (and rendered for a stand-in), so a smaller
    registry still compiles. -#}
{% macro staged_city() %}
    {%- set city_id = model.name | replace('stg_', '', 1) | replace('__service_requests', '') -%}
    {%- for city in city_feeds() if city.id == city_id -%}
        {{ return(city) }}
    {%- endfor -%}
    {{ config(enabled=false) }}
    {{ return({'id': city_id, 'timezone': 'UTC', 'protocol': none, 'raw_tables': ['service_requests']}) }}
{% endmacro %}


{#- One raw table of a city, where the city's loads write it (schema raw_<city>). -#}
{% macro raw_relation(city_id, table) %}
    {{ return(api.Relation.create(database=target.database, schema='raw_' ~ city_id, identifier=table)) }}
{% endmacro %}
