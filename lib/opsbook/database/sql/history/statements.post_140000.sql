-- pg_stat_statements counters per statement in this database, without the query text; PostgreSQL 14+.
SELECT s.queryid::text AS queryid,
       r.rolname AS role,
       s.toplevel,
       s.calls::float8 AS calls,
       s.total_exec_time::float8 AS total_exec_time_ms,
       s.total_plan_time::float8 AS total_plan_time_ms,
       s.rows::float8 AS rows,
       s.shared_blks_hit::float8 AS shared_blks_hit,
       s.shared_blks_read::float8 AS shared_blks_read,
       s.temp_blks_written::float8 AS temp_blks_written,
       s.wal_bytes::float8 AS wal_bytes
FROM {pgss}.pg_stat_statements(false) s
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.queryid IS NOT NULL
ORDER BY s.queryid, role
