{%- set raw = raw_source('raw_boston_open311', feed_tables('boston_open311')) -%}
{{ open311_requests(raw, 'America/New_York') }}
