{#- The canonical request columns, in order. The one list int_service_requests
    selects and every staging model must produce (documented in
    models/intermediate/_intermediate__models.yml). -#}
{% macro canonical_columns() %}
    {{ return([
        'city_id', 'request_id', 'requested_at', 'requested_at_local', 'updated_at',
        'closed_at', 'closed_at_local', 'due_at', 'status', 'source_status', 'status_notes',
        'channel', 'service_name', 'service_subtype', 'service_code', 'department',
        'address', 'zip', 'latitude', 'longitude', 'is_duplicate', 'parent_request_id',
        'extras', 'loaded_at'
    ]) }}
{% endmacro %}
