-- Active statements running longer than :min_seconds, oldest first; PostgreSQL 13+.
SELECT pid,
       usename AS role,
       application_name,
       client_addr::text AS client_addr,
       state,
       wait_event_type,
       wait_event,
       EXTRACT(EPOCH FROM now() - query_start)::float8 AS running_s,
       EXTRACT(EPOCH FROM now() - xact_start)::float8 AS xact_age_s,
       left(query, 2000) AS query
FROM pg_stat_activity
WHERE state = 'active'
  AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND now() - query_start > make_interval(secs => :min_seconds)
ORDER BY query_start
