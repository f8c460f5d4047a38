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
