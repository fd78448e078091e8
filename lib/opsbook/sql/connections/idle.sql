-- Idle client sessions, longest idle first (the guides' candidates for termination); PostgreSQL 13+.
SELECT pid,
       usename AS role,
       application_name,
       client_addr::text AS client_addr,
       datname,
       EXTRACT(EPOCH FROM now() - state_change)::float8 AS idle_s,
       EXTRACT(EPOCH FROM now() - backend_start)::float8 AS connected_s,
       left(query, 300) AS last_query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND state = 'idle'
  AND pid <> pg_backend_pid()
ORDER BY state_change, pid
