{%- set raw = raw_source('raw_detroit', ['service_requests']) -%}
{{ seeclickfix_requests(raw, 'America/Detroit') }}
