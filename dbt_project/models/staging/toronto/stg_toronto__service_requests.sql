{{ open311_requests() }}
