-- Every session in a blocking tree: one row per pid with the pids blocking it, its ungranted lock and how long it has waited, also for sessions of other roles this role may not inspect (state 'hidden'); PostgreSQL 13 (no pg_locks.waitstart: waits are timed from the statement's start). Waiters come from pg_locks and each pg_blocking_pids() is called once: linear in waiters.
WITH waiting AS MATERIALIZED (  -- from pg_locks, readable by every role (pg_stat_activity.wait_event is not)
    SELECT DISTINCT ON (l.pid) l.pid, l.locktype, l.mode, l.database, l.relation, l.page, l.tuple, l.transactionid,
           l.classid, l.objid, l.objsubid, NULL::timestamptz AS waitstart
    FROM pg_locks l
    WHERE NOT l.granted AND l.pid IS NOT NULL
    ORDER BY l.pid
), edged AS MATERIALIZED (  -- pg_blocking_pids once per waiter: every edge, fetched once (may repeat a pid)
    SELECT * FROM (SELECT w.*, pg_blocking_pids(w.pid) AS blocked_by FROM waiting w) b WHERE cardinality(blocked_by) > 0
), involved AS (
    SELECT pid FROM edged UNION SELECT unnest(blocked_by) FROM edged
)
SELECT i.pid,
       coalesce(w.blocked_by, '{}') AS blocked_by,
       CASE WHEN i.pid = 0 THEN 'prepared transaction'
            WHEN a.pid IS NULL THEN 'gone'
            WHEN a.backend_type IS NULL THEN 'hidden'
            ELSE coalesce(a.state, 'unknown') END AS state,
       (a.pid IS NOT NULL AND a.backend_type IS NULL) AS hidden,
       a.usename AS role,
       a.application_name,
       a.client_addr::text AS client_addr,
       a.datname,
       w.locktype AS lock_type,
       w.mode AS lock_mode,
       CASE w.locktype
         WHEN 'relation' THEN coalesce(r.relation, 'relation ' || w.relation)
         WHEN 'tuple' THEN coalesce(r.relation, 'relation ' || w.relation) || ' row (' || w.page || ',' || w.tuple || ')'
         WHEN 'transactionid' THEN 'transaction ' || w.transactionid
         WHEN 'advisory' THEN 'advisory key ' || CASE WHEN w.objsubid = 1
                                                      THEN ((w.classid::bigint << 32) | w.objid::bigint)::text
                                                      ELSE w.classid || ',' || w.objid END
         ELSE w.locktype
       END AS lock_target,
       r.relation,
       CASE WHEN w.pid IS NOT NULL
            THEN EXTRACT(EPOCH FROM now() - coalesce(w.waitstart, a.query_start)) END::float8 AS wait_s,
       EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_age_s,
       EXTRACT(EPOCH FROM now() - a.state_change)::float8 AS state_s,
       left(a.query, 2000) AS query
FROM involved i
LEFT JOIN edged w ON w.pid = i.pid
LEFT JOIN pg_stat_activity a ON a.pid = i.pid
LEFT JOIN LATERAL (  -- schema-qualified, and only for relations of this database (oids repeat across databases)
    SELECT n.nspname || '.' || c.relname AS relation
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = w.relation AND w.database = (SELECT oid FROM pg_database WHERE datname = current_database())
) r ON true
ORDER BY i.pid
