{#- The staging model of a Socrata city. Socrata and the portal exports give
    floating wall-clock times on the city's clock (the registry's timezone): the
    `*_local` columns keep them, and requested_at, closed_at and due_at are the
    same instants in UTC (macros/local_to_utc.sql: the hour skipped at
    spring-forward is read with the offset before the change, the hour repeated
    at fall-back as its second, standard-time occurrence).

    Used as a call block; the block is the city's mapping, given the raw feed
    (sqlfluff places the macro's whole output at the call tag and misreads its
    indent there, hence the noqa on that line):

        {% call(raw) socrata_requests() %}  -- noqa: LT02
            {{ raw_field(raw, 'created_date') }} as requested_at_text,
            ...
        {% endcall %}

    The mapping names requested_at_text, closed_at_text, due_at_text (text),
    source_status, status_notes, channel, service_name, service_subtype,
    service_code, department, address, source_zip, latitude, longitude (double),
    parent_request_id and extras (a JSON object), a typed null where the city has
    none. `rules` replaces a derived column with the city's own rule (SQL over the
    mapping), e.g. {'status': ...}; the defaults are below. -#}
{% macro socrata_requests(rules={}) %}
    {%- set city = staged_city() -%}
    {%- set raw = staged_raw(city) -%}
    {{ wall_clock_requests(raw, caller(raw) | trim, city.timezone, rules) }}
{% endmacro %}


{#- The staging model of a CKAN DataStore city (Boston): text times on the city's
    clock, as Socrata's; the same call block and rules as socrata_requests. -#}
{% macro ckan_requests(rules={}) %}
    {%- set city = staged_city() -%}
    {%- set raw = staged_raw(city) -%}
    {{ wall_clock_requests(raw, caller(raw) | trim, city.timezone, rules) }}
{% endmacro %}


{% macro wall_clock_requests(raw, mapping, timezone, rules) %}
    {%- set final_columns = {
        'requested_at': text_to_instant('requested_at_text', timezone),
        'requested_at_local': text_to_wall_clock('requested_at_text', timezone),
        'closed_at': text_to_instant('closed_at_text', timezone),
        'closed_at_local': text_to_wall_clock('closed_at_text', timezone),
        'due_at': text_to_instant('due_at_text', timezone),
        'status': canonical_status('source_status'),
        'zip': clean_zip('source_zip'),
        'latitude': clean_coordinate('latitude'),
        'longitude': clean_coordinate('longitude'),
        'is_duplicate': says_duplicate('status_notes'),
    } -%}
    {%- do final_columns.update(rules) -%}
    {{ staged_requests(raw, mapping, final_columns) }}
{% endmacro %}
