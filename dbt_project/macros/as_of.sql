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



{#- Every period of the previous build ({{ this }}) of a city whose rows can no
    longer be trusted to hold at the new as-of: its as-of moved back (an as_of
    var set earlier than the last build's, or newer data withdrawn), or is not
    known: no row shows it while some have open requests (every one settled).
    A row showing an as_of was computed by the last build (such rows are
    recomputed by every run), so the largest is that build's. -#}
{% macro periods_of_cities_whose_as_of_moved_back(period) -%}
    select previous_build.city_id, previous_build.{{ period }}
    from {{ this }} as previous_build
    semi join (
        select built.city_id
        from {{ this }} as built
        left join {{ ref('dim_city') }} as cities
            on built.city_id = cities.city_id
        group by built.city_id, cities.as_of
        having max(built.as_of) > cities.as_of
            or (max(built.as_of) is not null and cities.as_of is null)
            or (max(built.as_of) is null and max(built.open_requests) > 0)
    ) as moved_back
        on previous_build.city_id = moved_back.city_id
{%- endmacro %}
