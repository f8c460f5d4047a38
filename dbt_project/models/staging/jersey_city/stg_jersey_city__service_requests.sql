{%- set raw = raw_source('raw_jersey_city', feed_tables('jersey_city')) -%}
{{ seeclickfix_requests(raw, 'America/New_York') }}
