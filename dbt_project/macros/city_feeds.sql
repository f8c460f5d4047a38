{#- Every city feed the project models: its registry id and the raw tables its
    staging model reads (the API feed, plus portal exports where the city has
    them). The one list the canonical union and the quarantine walk; a unit test
    checks it against the registry and the staging models on disk. -#}
{% macro city_feeds() %}
    {{ return([
        {'city': 'chicago', 'tables': ['service_requests', 'service_requests_export']},
        {'city': 'la', 'tables': ['service_requests', 'service_requests_export']},
        {'city': 'nyc', 'tables': ['service_requests', 'service_requests_export']},
        {'city': 'sf', 'tables': ['service_requests', 'service_requests_export']},
        {'city': 'boston', 'tables': ['service_requests', 'service_requests_export']},
        {'city': 'detroit', 'tables': ['service_requests']},
        {'city': 'jersey_city', 'tables': ['service_requests']},
        {'city': 'chicago_open311', 'tables': ['service_requests']},
        {'city': 'bloomington', 'tables': ['service_requests']},
        {'city': 'toronto', 'tables': ['service_requests']},
        {'city': 'boston_open311', 'tables': ['service_requests']},
    ]) }}
{% endmacro %}


{#- The raw tables of one city's feed, for its staging model's raw_source(). -#}
{% macro feed_tables(city) %}
    {%- for feed in city_feeds() if feed.city == city -%}
        {{ return(feed.tables) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("city_feeds() has no feed '" ~ city ~ "': add it to macros/city_feeds.sql") }}
{% endmacro %}
