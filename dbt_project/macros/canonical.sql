{#- Canonical values shared by every staging model. -#}

{#- The city's status word as open / in_progress / closed / other. Cities whose
    words are not listed here map them in their staging model first. -#}
{% macro canonical_status(source_status) -%}
    case
        when lower(trim({{ source_status }})) in (
            'closed', 'resolved', 'completed', 'complete', 'archived', 'done', 'fixed'
        ) then 'closed'
        when lower(trim({{ source_status }})) in (
            'acknowledged', 'assigned', 'in progress', 'in_progress', 'in-progress', 'started',
            'pending', 'scheduled', 'work in progress', 'under review'
        ) then 'in_progress'
        when lower(trim({{ source_status }})) in ('open', 'new', 'submitted', 'received', 'unassigned')
            then 'open'
        else 'other'
    end
{%- endmacro %}


{#- A five-digit ZIP from "10001", "10001-1234" or " 10001 "; null for anything else
    ("N/A", "0", blanks). -#}
{% macro clean_zip(zip) -%}
    case
        when regexp_full_match(trim(cast({{ zip }} as varchar)), '[0-9]{5}(-?[0-9]{4})?')
            then left(trim(cast({{ zip }} as varchar)), 5)
    end
{%- endmacro %}


{#- A WGS84 coordinate, null when missing or 0 (feeds use 0 for "no location"). -#}
{% macro clean_coordinate(value) -%}
    nullif({{ value }}, 0)
{%- endmacro %}


{#- True when a status or note says this request duplicates another: "is a
    duplicate of", "closed as duplicate", "resolved: duplicate", "Duplicate
    request", a note that starts "Duplicate". Not advice such as "please do not
    file duplicate complaints". -#}
{% macro says_duplicate(text) -%}
    coalesce(regexp_matches(
        lower({{ text }}),
        '(^\s*duplicate\b)|\b(is|was|marked|closed|case|resolved:?)( as)?( a)? duplicate\b'
        || '|\bduplicate (of|request|sr|case|issue|report|service request)\b'
    ), false)
{%- endmacro %}


{#- The ZIP that ends a one-line address ("..., Detroit, MI 48203, USA",
    "599 THE EMBARCADERO, SAN FRANCISCO, CA, 94111"), never a house number at its start. -#}
{% macro address_zip(address) -%}
    nullif(regexp_extract(
        {{ address }}, '([0-9]{5})(-[0-9]{4})?(,?\s*(usa|united states))?\s*$', 1, 'i'
    ), '')
{%- endmacro %}
