{%- set raw = raw_source('raw_bloomington', ['service_requests']) -%}
{{ open311_requests(raw, 'America/Indiana/Indianapolis') }}
