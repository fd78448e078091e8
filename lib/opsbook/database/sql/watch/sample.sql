-- One activity sample in one row: sessions by state, wait event type and application (JSON), the sessions waiting on a lock with their blockers, each blocking root's session, the longest transaction and this database's counters; PostgreSQL 13+. pg_blocking_pids runs only for sessions waiting on a lock.
WITH a AS (
    SELECT pid, coalesce(state, backend_type) AS state, wait_event_type,
           coalesce(nullif(application_name, ''), '(none)') AS app, usename, xact_start, state_change, query,
           backend_type
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
), waiting AS (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by FROM a WHERE wait_event_type = 'Lock'
), blockers AS (
    SELECT DISTINCT unnest(blocked_by) AS pid FROM waiting
), wanted AS (
    SELECT DISTINCT ON (l.pid) l.pid, l.locktype, l.mode, l.relation
    FROM pg_locks l WHERE NOT l.granted AND l.pid IN (SELECT pid FROM waiting) ORDER BY l.pid
), held AS (
    SELECT DISTINCT ON (l.pid) l.pid, l.relation
    FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
    WHERE l.granted AND l.locktype = 'relation' AND c.relkind IN ('r', 'p')
      AND c.relnamespace <> 'pg_catalog'::regnamespace
      AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock',
                     'RowShareLock')
      AND l.pid IN (SELECT pid FROM blockers)
    ORDER BY l.pid, l.mode DESC
)
SELECT
    (SELECT count(*) FROM a WHERE backend_type = 'client backend') AS connections,
    current_setting('max_connections')::int AS max_connections,
    (SELECT json_object_agg(state, n) FROM (SELECT state, count(*) AS n FROM a
        WHERE backend_type = 'client backend' GROUP BY state) s) AS by_state,
    (SELECT json_object_agg(w, n) FROM (SELECT coalesce(wait_event_type, 'CPU') AS w, count(*) AS n FROM a
        WHERE backend_type = 'client backend' AND state = 'active' GROUP BY 1) s) AS by_wait,
    (SELECT json_object_agg(app, n) FROM (SELECT app, count(*) AS n FROM a WHERE backend_type = 'client backend'
        GROUP BY app ORDER BY n DESC, app LIMIT :max_apps) s) AS by_app,
    (SELECT json_agg(json_build_array(w.pid, w.blocked_by, x.locktype, x.mode,
                                      coalesce(x.relation::regclass::text, ''), a.app) ORDER BY w.pid)
       FROM waiting w LEFT JOIN wanted x ON x.pid = w.pid LEFT JOIN a ON a.pid = w.pid) AS waits,
    (SELECT json_agg(json_build_array(b.pid, a.app, a.usename, a.state,
                                      extract(epoch FROM now() - a.xact_start), left(a.query, :max_query),
                                      coalesce(h.relation::regclass::text, '')) ORDER BY b.pid)
       FROM blockers b LEFT JOIN a ON a.pid = b.pid LEFT JOIN held h ON h.pid = b.pid) AS blockers,
    (SELECT json_build_array(pid, app, state, extract(epoch FROM now() - xact_start))
       FROM a WHERE xact_start IS NOT NULL ORDER BY xact_start LIMIT 1) AS longest,
    d.xact_commit, d.xact_rollback, d.deadlocks, d.temp_files, d.temp_bytes,
    CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() - '0/0'::pg_lsn END AS wal_bytes,
    extract(epoch FROM now()) AS ts
FROM pg_stat_database d
WHERE d.datname = current_database()
