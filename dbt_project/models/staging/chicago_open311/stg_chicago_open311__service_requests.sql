{%- set raw = raw_source('raw_chicago_open311', feed_tables('chicago_open311')) -%}
{{ open311_requests(raw, 'America/Chicago') }}
