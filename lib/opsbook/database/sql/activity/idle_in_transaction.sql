-- Sessions idle in a transaction: for how long, the locks they hold, whom they block, and how far they hold back the xmin horizon; plus the sessions of other roles this role may not inspect (no pg_read_all_stats: backend_type NULL, marked hidden), with whether pg_locks shows them inside a transaction; PostgreSQL 13+.
WITH blockers AS MATERIALIZED (  -- waiters from pg_locks (readable by every role), each pg_blocking_pids() once
    SELECT b.blocker, count(DISTINCT w.pid)::int AS sessions_blocked
    FROM (SELECT DISTINCT pid FROM pg_locks WHERE NOT granted AND pid IS NOT NULL) w
    CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(blocker)
    GROUP BY b.blocker
), in_transaction AS MATERIALIZED (  -- every transaction holds its own virtualxid lock
    SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'virtualxid' AND granted AND pid IS NOT NULL
), horizon AS (
    SELECT max(greatest(age(backend_xid), age(backend_xmin))) AS oldest_xids
    FROM pg_stat_activity
)
SELECT a.pid,
       a.usename AS role,
       a.application_name,
       a.client_addr::text AS client_addr,
       a.datname,
       CASE WHEN a.backend_type IS NULL THEN 'hidden' ELSE a.state END AS state,
       a.backend_type IS NULL AS hidden,
       EXISTS (SELECT 1 FROM in_transaction t WHERE t.pid = a.pid) AS in_transaction,
       EXTRACT(EPOCH FROM now() - a.state_change)::float8 AS idle_s,
       EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_age_s,
       (SELECT count(*) FROM pg_locks l
         WHERE l.pid = a.pid AND l.granted AND l.locktype NOT IN ('virtualxid', 'transactionid'))::int AS locks_held,
       coalesce((SELECT b.sessions_blocked FROM blockers b WHERE b.blocker = a.pid), 0)::int AS sessions_blocked,
       greatest(age(a.backend_xid), age(a.backend_xmin))::bigint AS horizon_age_xids,
       coalesce(greatest(age(a.backend_xid), age(a.backend_xmin)) >= (SELECT oldest_xids FROM horizon), false)
         AS holds_oldest_horizon,
       left(a.query, 2000) AS last_query
FROM pg_stat_activity a
WHERE (a.backend_type = 'client backend' AND a.state IN ('idle in transaction', 'idle in transaction (aborted)'))
   OR (a.backend_type IS NULL AND a.usesysid IS NOT NULL AND a.pid <> pg_backend_pid())
ORDER BY hidden, a.state_change, a.pid
