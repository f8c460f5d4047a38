{#- A city's floating local wall-clock timestamp (as Socrata, CKAN and portal
    exports deliver it) as an instant. DuckDB (ICU) resolves the nonexistent
    spring-forward hour by reading it with the offset in force before the jump
    (02:30 on a spring-forward day in New York becomes 07:30 UTC, i.e. 03:30
    daylight time) and the repeated fall-back hour as its second, standard-time
    occurrence (01:30 on a fall-back day becomes 06:30 UTC). The source cannot
    tell the two 01:30s apart, so one fixed rule is the honest choice; it is
    tested in tests/unit/test_staging_timezones.py and stated in the staging docs. -#}
{% macro local_to_utc(local_timestamp, timezone) -%}
    timezone('{{ timezone }}', {{ local_timestamp }})
{%- endmacro %}


{#- An instant (a timestamp that carried its offset, as Open311 and SeeClickFix
    send them) on the city's wall clock. -#}
{% macro utc_to_local(instant, timezone) -%}
    timezone('{{ timezone }}', {{ instant }})
{%- endmacro %}


{#- A time as feeds and the export loader deliver it (ISO 8601 text), as an instant.
    Text with `Z` or an offset is an instant already; text without one is a wall-clock
    time on the city's clock (local_to_utc). Any other text is null, never guessed:
    DuckDB's own cast reads "1/1/20 0:05" as the year 1. The export loader has already
    turned every layout it can read with certainty into one of these two forms
    (ingestion/sources/timestamps.py). -#}
{% macro text_to_instant(text, timezone) -%}
    case
        when regexp_full_match({{ text }}, '{{ iso_instant_pattern() }}')
            then try_cast({{ text }} as timestamptz)
        when regexp_full_match({{ text }}, '{{ iso_wall_clock_pattern() }}')
            then {{ local_to_utc('try_cast(' ~ text ~ ' as timestamp)', timezone) }}
    end
{%- endmacro %}


{#- The same time on the city's wall clock (a timestamp without zone). -#}
{% macro text_to_wall_clock(text, timezone) -%}
    case
        when regexp_full_match({{ text }}, '{{ iso_instant_pattern() }}')
            then {{ utc_to_local('try_cast(' ~ text ~ ' as timestamptz)', timezone) }}
        when regexp_full_match({{ text }}, '{{ iso_wall_clock_pattern() }}')
            then try_cast({{ text }} as timestamp)
    end
{%- endmacro %}


{% macro iso_wall_clock_pattern() -%}
    \d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?
{%- endmacro %}


{% macro iso_instant_pattern() -%}
    \d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)? ?([Zz]|[+-]\d{2}(:?\d{2})?)
{%- endmacro %}
