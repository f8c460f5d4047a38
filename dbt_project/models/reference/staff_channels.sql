{#- One row per staff channel of the registry's cities (metrics.staff_channels),
    from the var `cities`: what fct_service_requests marks staff_initiated. A
    registry with no staff channels gives an empty table of the same columns. -#}

with

registry as (

    select
        cast(null as varchar) as city_id,
        cast(null as varchar) as channel
    where false
    {%- for city in city_feeds() %}
    {%- for channel in city.staff_channels %}
    union all
    select
        '{{ city.id }}' as city_id,
        '{{ channel | replace("'", "''") }}' as channel
    {%- endfor %}
    {%- endfor %}

),

final as (

    select
        city_id,
        channel

    from registry

)

select * from final
