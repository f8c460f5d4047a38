{#- The places requests are counted in, one row per (city, layer, area): every
    area of the city's boundary layers (geography.boundaries), requests or
    not, plus every area int_request_areas placed a request in: the built-in
    layers `zip` (the reported ZIP) and `h3` (H3 cells), and `unlocated` for
    the requests a layer could not place. Before the first boundary load only
    the built-in layers exist. -#}

-- depends_on: {{ source('geography', 'boundaries') }}

{% set has_boundaries = geography_loaded() %}

with

boundaries as (

    {% if has_boundaries -%}
    select
        city_id, layer, area_id, area_name, layer_label, vintage, population, population_source, area_km2
    from {{ source('geography', 'boundaries') }}
    {%- else -%}
    select
        cast(null as varchar) as city_id,
        cast(null as varchar) as layer,
        cast(null as varchar) as area_id,
        cast(null as varchar) as area_name,
        cast(null as varchar) as layer_label,
        cast(null as varchar) as vintage,
        cast(null as bigint) as population,
        cast(null as varchar) as population_source,
        cast(null as double) as area_km2
    where false
    {%- endif %}

),

boundary_layers as (

    select
        city_id,
        layer,
        any_value(layer_label) as layer_label
    from boundaries
    group by city_id, layer

),

placed_areas as (

    select
        city_id,
        layer,
        area_id,
        any_value(vintage) as vintage
    from {{ ref('int_request_areas') }}
    group by city_id, layer, area_id

),

-- areas a request landed in that no boundary file lists: ZIPs, H3 cells, unlocated
placed_only as (

    select
        placed_areas.city_id,
        placed_areas.layer,
        placed_areas.area_id,
        case
            when placed_areas.area_id = 'unlocated' then 'Unlocated'
            when placed_areas.layer = 'zip' then 'ZIP ' || placed_areas.area_id
            when placed_areas.layer = 'h3' then 'H3 ' || placed_areas.area_id
            else placed_areas.area_id
        end as area_name,
        case
            when placed_areas.layer = 'zip' then 'ZIP code (as reported)'
            when placed_areas.layer = 'h3' then 'H3 cell'
            else boundary_layers.layer_label
        end as layer_label,
        placed_areas.vintage,
        cast(null as bigint) as population,
        cast(null as varchar) as population_source,
        cast(null as double) as area_km2

    from placed_areas
    left join boundary_layers
        on placed_areas.city_id = boundary_layers.city_id
            and placed_areas.layer = boundary_layers.layer
    anti join boundaries
        on placed_areas.city_id = boundaries.city_id
            and placed_areas.layer = boundaries.layer
            and placed_areas.area_id = boundaries.area_id

),

areas as (

    select * from boundaries
    union all by name
    select * from placed_only

),

final as (

    select
        city_id,
        layer,
        area_id,
        case when area_id = 'unlocated' then 'unlocated' else layer end as area_type,
        area_name,
        layer_label,
        vintage,
        population,
        population_source,
        area_km2

    from areas

)

select * from final
