{%- set raw = raw_source('raw_boston_open311', ['service_requests']) -%}
{{ open311_requests(raw, 'America/New_York') }}
