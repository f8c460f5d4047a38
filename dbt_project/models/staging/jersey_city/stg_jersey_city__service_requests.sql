{%- set raw = raw_source('raw_jersey_city', ['service_requests']) -%}
{{ seeclickfix_requests(raw, 'America/New_York') }}
