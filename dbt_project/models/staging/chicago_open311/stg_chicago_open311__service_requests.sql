{%- set raw = raw_source('raw_chicago_open311', ['service_requests']) -%}
{{ open311_requests(raw, 'America/Chicago') }}
