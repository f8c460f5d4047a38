{#- The instant a build treats as "now". Unit tests and backfills pin it with
    the `as_of` var; otherwise it is the build time. -#}
{% macro as_of() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as timestamptz)
    {%- else -%}
        current_timestamp
    {%- endif -%}
{%- endmacro %}


{#- Elapsed hours between two instants (UTC arithmetic, so a DST change never
    adds or removes an hour). -#}
{% macro hours_between(start, end) -%}
    date_diff('second', {{ start }}, {{ end }}) / 3600.0
{%- endmacro %}
