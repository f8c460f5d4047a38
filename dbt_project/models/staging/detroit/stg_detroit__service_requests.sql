{%- set raw = raw_source('raw_detroit', feed_tables('detroit')) -%}
{{ seeclickfix_requests(raw, 'America/Detroit') }}
