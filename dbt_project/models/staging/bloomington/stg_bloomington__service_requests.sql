{%- set raw = raw_source('raw_bloomington', feed_tables('bloomington')) -%}
{{ open311_requests(raw, 'America/Indiana/Indianapolis') }}
