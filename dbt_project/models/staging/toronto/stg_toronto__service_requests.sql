{%- set raw = raw_source('raw_toronto', ['service_requests']) -%}
{{ open311_requests(raw, 'America/Toronto') }}
