-- Tables with data that the statistical bloat estimate cannot see: never analyzed (no pg_stats rows), or not readable by this role (pg_stats shows only columns it may SELECT); with the schema of a pgstattuple this role may run, to measure them instead; PostgreSQL 13+.
-- Lock-free where it can be: pg_relation_size() waits behind an ACCESS EXCLUSIVE lock (a migration), so it is asked only
-- for readable tables without relpages and not so locked; size_bytes is NULL when unknown.
WITH exclusive AS MATERIALIZED (
    SELECT DISTINCT relation FROM pg_locks
    WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
), unseen AS (
    SELECT c.oid, n.nspname, c.relname, c.relpages,
           has_table_privilege(c.oid, 'SELECT') AS readable,
           coalesce(st.n_live_tup + st.n_dead_tup, 0) AS tuples
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_all_tables st ON st.relid = c.oid
    WHERE c.relkind = 'r' AND n.nspname <> ALL (:excluded_schemas)
      AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname
                      AND NOT s.inherited)
)
SELECT u.oid::bigint AS table_oid,
       u.nspname AS schema_name,
       u.relname AS table_name,
       CASE WHEN u.relpages > 0 THEN u.relpages::float8 * current_setting('block_size')::float8
            WHEN u.readable AND u.oid NOT IN (SELECT relation FROM exclusive) THEN pg_relation_size(u.oid)::float8
       END AS heap_bytes,
       CASE WHEN u.readable THEN 'never analyzed' ELSE 'not readable' END AS reason,
       (SELECT quote_ident(en.nspname) FROM pg_extension e
        JOIN pg_namespace en ON en.oid = e.extnamespace
        JOIN pg_proc p ON p.pronamespace = en.oid AND p.proname = 'pgstattuple_approx'
        WHERE e.extname = 'pgstattuple' AND has_function_privilege(p.oid, 'EXECUTE')
        ORDER BY p.oid LIMIT 1) AS pgstattuple_schema
FROM unseen u
WHERE u.relpages > 0 OR u.tuples > 0 OR (u.readable AND u.oid NOT IN (SELECT relation FROM exclusive)
                                         AND pg_relation_size(u.oid) > 0)
ORDER BY heap_bytes DESC NULLS LAST, schema_name, table_name
