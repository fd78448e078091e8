-- Every session in a blocking tree: one row per pid with the pids blocking it, its ungranted lock and how long it has waited; PostgreSQL 14+ (waits timed by pg_locks.waitstart).
WITH waiting AS (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by
    FROM pg_stat_activity
    WHERE wait_event_type = 'Lock'
), edges AS (
    SELECT w.pid, b.blocker
    FROM waiting w CROSS JOIN LATERAL unnest(w.blocked_by) AS b(blocker)
), involved AS (
    SELECT pid FROM edges UNION SELECT blocker FROM edges
), wanted AS (
    SELECT DISTINCT ON (l.pid) l.pid, l.locktype, l.mode, l.database, l.relation, l.page, l.tuple, l.transactionid,
           l.classid, l.objid, l.objsubid, l.waitstart
    FROM pg_locks l
    WHERE NOT l.granted AND l.pid IN (SELECT pid FROM edges)
    ORDER BY l.pid
)
SELECT i.pid,
       coalesce((SELECT array_agg(e.blocker ORDER BY e.blocker) FROM edges e WHERE e.pid = i.pid), '{}')
         AS blocked_by,
       CASE WHEN i.pid = 0 THEN 'prepared transaction' ELSE coalesce(a.state, 'hidden') END AS state,
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
LEFT JOIN pg_stat_activity a ON a.pid = i.pid
LEFT JOIN wanted w ON w.pid = i.pid
LEFT JOIN LATERAL (  -- schema-qualified, and only for relations of this database (oids repeat across databases)
    SELECT n.nspname || '.' || c.relname AS relation
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = w.relation AND w.database = (SELECT oid FROM pg_database WHERE datname = current_database())
) r ON true
ORDER BY i.pid
