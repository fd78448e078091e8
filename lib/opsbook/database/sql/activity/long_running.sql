-- Active client statements, oldest first, plus the sessions of other roles this role may not inspect (no pg_read_all_stats: backend_type NULL, marked hidden); PostgreSQL 13+.
SELECT pid,
       usename AS role,
       application_name,
       client_addr::text AS client_addr,
       datname,
       coalesce(state, 'hidden') AS state,
       wait_event_type,
       wait_event,
       EXTRACT(EPOCH FROM now() - query_start)::float8 AS running_s,
       EXTRACT(EPOCH FROM now() - xact_start)::float8 AS xact_age_s,
       backend_type IS NULL AS hidden,
       left(query, 2000) AS query
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
  AND ((backend_type = 'client backend' AND state = 'active'
        AND now() - query_start > make_interval(secs => :min_seconds))
       OR (backend_type IS NULL AND usesysid IS NOT NULL))
ORDER BY hidden, query_start, pid
