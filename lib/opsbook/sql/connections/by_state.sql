-- Client connections grouped by state, role, application and client address; PostgreSQL 13+.
SELECT coalesce(state, 'unknown') AS state,
       coalesce(usename, '') AS role,
       coalesce(application_name, '') AS application_name,
       coalesce(client_addr::text, 'local') AS client_addr,
       count(*)::int AS connections,
       max(EXTRACT(EPOCH FROM now() - state_change))::float8 AS longest_in_state_s
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3, 4
ORDER BY connections DESC, state, role, application_name, client_addr
