-- Every table, materialized view and index outside the system catalogs: size, row estimate, scan/write/vacuum counters; PostgreSQL 13+.
-- One query over the catalog: no per-table round trip. Relations under an ACCESS EXCLUSIVE lock are sized from
-- relpages instead of pg_table_size(), which would wait for the lock.
WITH locked AS (
    SELECT array_agg(relation) AS oids FROM pg_locks
    WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
), rels AS (
    SELECT c.oid, c.relkind, n.nspname, c.relname, c.reltuples, c.relpages, NULL::oid AS parent_oid
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
    UNION ALL
    SELECT c.oid, c.relkind, n.nspname, c.relname, c.reltuples, c.relpages, x.indrelid
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
)
SELECT CASE WHEN r.relkind = 'i' THEN 'index' ELSE 'table' END AS kind,
       r.nspname AS schema_name,
       r.relname AS name,
       p.relname AS parent,
       (CASE WHEN r.oid = ANY (coalesce((SELECT oids FROM locked), '{}'))
             THEN r.relpages::bigint * current_setting('block_size')::int
             WHEN r.relkind = 'i' THEN pg_relation_size(r.oid)
             ELSE pg_table_size(r.oid) END)::float8 AS size_bytes,
       r.reltuples::float8 AS rows_est,
       coalesce(t.seq_scan, NULL)::float8 AS seq_scan,
       coalesce(t.idx_scan, i.idx_scan)::float8 AS idx_scan,
       t.n_tup_ins::float8 AS n_tup_ins,
       t.n_tup_upd::float8 AS n_tup_upd,
       t.n_tup_del::float8 AS n_tup_del,
       t.n_live_tup::float8 AS n_live_tup,
       t.n_dead_tup::float8 AS n_dead_tup,
       t.n_mod_since_analyze::float8 AS n_mod_since_analyze,
       extract(epoch FROM t.last_vacuum)::float8 AS last_vacuum_epoch,
       extract(epoch FROM t.last_autovacuum)::float8 AS last_autovacuum_epoch,
       extract(epoch FROM t.last_analyze)::float8 AS last_analyze_epoch,
       extract(epoch FROM t.last_autoanalyze)::float8 AS last_autoanalyze_epoch,
       t.autovacuum_count::float8 AS autovacuum_count
FROM rels r
LEFT JOIN pg_class p ON p.oid = r.parent_oid
LEFT JOIN pg_stat_all_tables t ON t.relid = r.oid AND r.relkind <> 'i'
LEFT JOIN pg_stat_all_indexes i ON i.indexrelid = r.oid AND r.relkind = 'i'
ORDER BY kind DESC, schema_name, name
