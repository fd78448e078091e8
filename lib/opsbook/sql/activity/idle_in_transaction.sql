-- Sessions idle in a transaction: for how long, the locks they hold, whom they block, and how far they hold back the xmin horizon; PostgreSQL 13+.
WITH waiting AS (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by
    FROM pg_stat_activity
    WHERE wait_event_type = 'Lock'
), horizon AS (
    SELECT max(greatest(age(backend_xid), age(backend_xmin))) AS oldest_xids
    FROM pg_stat_activity
)
SELECT a.pid,
       a.usename AS role,
       a.application_name,
       a.client_addr::text AS client_addr,
       a.datname,
       a.state,
       EXTRACT(EPOCH FROM now() - a.state_change)::float8 AS idle_s,
       EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_age_s,
       (SELECT count(*) FROM pg_locks l
         WHERE l.pid = a.pid AND l.granted AND l.locktype NOT IN ('virtualxid', 'transactionid'))::int AS locks_held,
       (SELECT count(*) FROM waiting w WHERE a.pid = ANY (w.blocked_by))::int AS sessions_blocked,
       greatest(age(a.backend_xid), age(a.backend_xmin))::bigint AS horizon_age_xids,
       coalesce(greatest(age(a.backend_xid), age(a.backend_xmin)) >= (SELECT oldest_xids FROM horizon), false)
         AS holds_oldest_horizon,
       left(a.query, 2000) AS last_query
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend'
  AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
ORDER BY a.state_change, a.pid
