{%- set raw = raw_source('raw_toronto', feed_tables('toronto')) -%}
{{ open311_requests(raw, 'America/Toronto') }}
