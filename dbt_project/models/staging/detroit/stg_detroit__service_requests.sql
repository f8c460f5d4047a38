{{ seeclickfix_requests() }}
