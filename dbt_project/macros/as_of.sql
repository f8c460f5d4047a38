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



{#- The periods of the previous build ({{ this }}) whose settled rows may no
    longer hold, and those that now hold a request dated in the future. A settled
    row's figures hold at any as-of from its figures_settled_at on; the city's
    as-of moving back before it (an as_of var set earlier, or the city's newest
    change corrected) makes them move again. Rows without open requests depend
    on the clock only through dates in the future, which fct checks against
    each build's clock: a request valid in the previous build may be dated in
    the future now. (Rows still moving show an as_of and are recomputed by the
    model's own rule, as are those already holding such a request.) -#}
{% macro periods_to_recompute_for_the_clock(period) -%}
    {#- (a unit test's this is its given rows, not the table) -#}
    {%- if execute and model.resource_type != 'unit_test' -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if columns and 'figures_settled_at' not in columns -%}
            {{ exceptions.raise_compiler_error(
                this ~ " was built before it had figures_settled_at, which its incremental rule reads."
                ~ " Rebuild it once: run the rebuild job (a full refresh of every model), or, in"
                ~ " dbt_project/: dbt build --full-refresh --select "
                ~ this.identifier ~ " --vars \"$(python -m ingestion.registry)\""
            ) }}
        {%- endif -%}
    {%- endif -%}
    select previous_build.city_id, previous_build.{{ period }}
    from {{ this }} as previous_build
    left join {{ ref('dim_city') }} as cities
        on previous_build.city_id = cities.city_id
    where previous_build.figures_settled_at > cities.as_of
        or (previous_build.figures_settled_at is not null and cities.as_of is null)

    union

    select city_id, {{ period }}
    from {{ ref('fct_service_requests') }}
    where hours_to_close_null_reason = 'date_in_future'
{%- endmacro %}


{#- The instant from which a settled row's figures hold: its youngest open
    request's `requested_at`, to the second (ages are whole seconds), plus
    `age_hours`, the age at which that request settles them. -#}
{% macro settled_from(requested_at, age_hours) -%}
    to_timestamp(floor(epoch({{ requested_at }})) + round({{ age_hours }} * 3600))
{%- endmacro %}
