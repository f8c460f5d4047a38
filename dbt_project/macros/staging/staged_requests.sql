{#- The skeleton every staging model shares: source -> renamed -> final.
    `renamed` reads the raw feed: the keys and load time every raw table has, then
    `renamed_columns`, the protocol's or city's mapping (SQL). `final` selects the
    canonical columns (macros/canonical_columns.sql) in order, each as
    `final_columns[name]` (SQL over `renamed`) or, when not given, as the renamed
    column of that name. -#}
{% macro staged_requests(raw, renamed_columns, final_columns) %}
with

source as (

    select * from {{ raw.relation }}

),

renamed as (

    select
        city_id,
        source_id as request_id,
        source_updated_at as updated_at,
        {{ renamed_columns }},
        _loaded_at as loaded_at

    from source

),

final as (

    select
        {%- for column in canonical_columns() %}
        {{ final_columns.get(column, column) }} as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from renamed

)

select * from final
{% endmacro %}
