-- Client connections grouped by state, role, application and client address; sessions of other roles that this role may not inspect (no pg_read_all_stats: backend_type NULL) count as state 'hidden'; PostgreSQL 13+.
SELECT CASE WHEN backend_type IS NULL THEN 'hidden' ELSE coalesce(state, 'unknown') END AS state,
       coalesce(usename, '') AS role,
       coalesce(application_name, '') AS application_name,
       coalesce(client_addr::text, 'local') AS client_addr,
       count(*)::int AS connections,
       max(EXTRACT(EPOCH FROM now() - state_change))::float8 AS longest_in_state_s
FROM pg_stat_activity
WHERE backend_type = 'client backend' OR (backend_type IS NULL AND usesysid IS NOT NULL)
GROUP BY 1, 2, 3, 4
ORDER BY connections DESC, state, role, application_name, client_addr
