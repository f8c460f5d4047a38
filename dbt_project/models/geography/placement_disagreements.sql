{#- Where the city's own code for a request's area and civic311's placement part:
    one row per (city, layer, area of the point, reported code) with at least
    one such request. Built beside the boundary tables, rebuilt every run from
    int_request_areas. -#}

-- depends_on: {{ source('geography', 'boundaries') }}

with

coded_requests as (

    select
        city_id,
        layer,
        vintage,
        area_id,
        placed_by,
        unlocated_reason,
        reported_area_id
    from {{ ref('int_request_areas') }}
    where reported_area_id is not null

),

layer_areas as (

    {{ boundary_areas() }}

),

compared as (

    select
        coded_requests.city_id,
        coded_requests.layer,
        coded_requests.vintage,
        case
            when coded_requests.placed_by = 'point' then coded_requests.area_id
            when coded_requests.unlocated_reason = 'outside_layer' then 'unlocated'
        end as point_area_id,
        coded_requests.reported_area_id,
        case
            when layer_areas.area_id is null then 'reported_code_not_in_vintage'
            when coded_requests.placed_by = 'point'
                and coded_requests.area_id <> coded_requests.reported_area_id then 'point_in_other_area'
            when coded_requests.unlocated_reason = 'outside_layer' then 'point_outside_layer'
        end as reason

    from coded_requests
    left join layer_areas
        on coded_requests.city_id = layer_areas.city_id
            and coded_requests.layer = layer_areas.layer
            and coded_requests.reported_area_id = layer_areas.area_id

),

final as (

    select
        city_id,
        layer,
        vintage,
        point_area_id,
        reported_area_id,
        reason,
        count(*) as requests
    from compared
    where reason is not null
    group by all

)

select * from final
