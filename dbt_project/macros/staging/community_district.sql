{#- NYC's Community Board as the community district's key in the city planning
    department's files (boro_cd): "06 BROOKLYN" -> '306', the borough's number
    (Manhattan 1, Bronx 2, Brooklyn 3, Queens 4, Staten Island 5) times 100 plus
    the district's. A park or airport board ("64 MANHATTAN", Central Park) keeps
    its code, 164, which a layer of the 59 districts lacks. A board that names no
    district ("0 Unspecified", "Unspecified QUEENS") is null, never guessed. A
    macro, so a unit test runs it on the samples' values. -#}
{% macro community_board_district(community_board) -%}
    case
        when regexp_full_match(
            upper(trim({{ community_board }})), '0?[1-9][0-9]? +(MANHATTAN|BRONX|BROOKLYN|QUEENS|STATEN ISLAND)'
        )
            then cast(
                list_position(
                    ['MANHATTAN', 'BRONX', 'BROOKLYN', 'QUEENS', 'STATEN ISLAND'],
                    regexp_extract(upper(trim({{ community_board }})), '^[0-9]+ +(.+)$', 1)
                ) * 100
                + cast(regexp_extract(trim({{ community_board }}), '^[0-9]+') as integer)
                as varchar
            )
    end
{%- endmacro %}
