-- Idle client sessions, longest idle first (the guides' candidates for termination), plus the sessions of other roles this role may not inspect (no pg_read_all_stats: backend_type NULL, marked hidden); PostgreSQL 13+.
SELECT pid,
       usename AS role,
       application_name,
       client_addr::text AS client_addr,
       datname,
       backend_type IS NULL AS hidden,
       EXTRACT(EPOCH FROM now() - state_change)::float8 AS idle_s,
       EXTRACT(EPOCH FROM now() - backend_start)::float8 AS connected_s,
       left(query, 300) AS last_query
FROM pg_stat_activity
WHERE ((backend_type = 'client backend' AND state = 'idle') OR (backend_type IS NULL AND usesysid IS NOT NULL))
  AND pid <> pg_backend_pid()
ORDER BY hidden, state_change, pid
