-- Every table, materialized view and index outside the system catalogs: size, row estimate, scan/write/vacuum counters; PostgreSQL 13+.
-- One query over the catalog, no per-table round trip. Exact sizes (pg_table_size / pg_relation_size, which open
-- each relation) for the :exact_sizes relations with the most writes (an index counts its table's); the rest, and
-- relations under an ACCESS EXCLUSIVE lock (sizing them would wait), from relpages as of their last VACUUM/ANALYZE.
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
), ranked AS (
    SELECT r.*, r.relkind <> 'i' AS is_table,
           w.seq_scan, w.idx_scan, w.n_tup_ins, w.n_tup_upd, w.n_tup_del, w.n_live_tup, w.n_dead_tup,
           w.n_mod_since_analyze, w.last_vacuum, w.last_autovacuum, w.last_analyze, w.last_autoanalyze,
           w.autovacuum_count,
           row_number() OVER (ORDER BY coalesce(w.n_tup_ins + w.n_tup_upd + w.n_tup_del, 0) DESC, r.oid) AS write_rank
    FROM rels r
    LEFT JOIN pg_stat_all_tables w ON w.relid = coalesce(r.parent_oid, r.oid)
)
SELECT CASE WHEN r.is_table THEN 'table' ELSE 'index' END AS kind,
       r.nspname AS schema_name,
       r.relname AS name,
       p.relname AS parent,
       (CASE WHEN r.write_rank > :exact_sizes OR r.oid = ANY (coalesce((SELECT oids FROM locked), '{}'))
             THEN r.relpages::bigint * current_setting('block_size')::int
             WHEN r.is_table THEN pg_table_size(r.oid)
             ELSE pg_relation_size(r.oid) END)::float8 AS size_bytes,
       r.reltuples::float8 AS rows_est,
       CASE WHEN r.is_table THEN r.seq_scan END::float8 AS seq_scan,
       CASE WHEN r.is_table THEN r.idx_scan ELSE pg_stat_get_numscans(r.oid) END::float8 AS idx_scan,
       CASE WHEN r.is_table THEN r.n_tup_ins END::float8 AS n_tup_ins,
       CASE WHEN r.is_table THEN r.n_tup_upd END::float8 AS n_tup_upd,
       CASE WHEN r.is_table THEN r.n_tup_del END::float8 AS n_tup_del,
       CASE WHEN r.is_table THEN r.n_live_tup END::float8 AS n_live_tup,
       CASE WHEN r.is_table THEN r.n_dead_tup END::float8 AS n_dead_tup,
       CASE WHEN r.is_table THEN r.n_mod_since_analyze END::float8 AS n_mod_since_analyze,
       CASE WHEN r.is_table THEN extract(epoch FROM r.last_vacuum) END::float8 AS last_vacuum_epoch,
       CASE WHEN r.is_table THEN extract(epoch FROM r.last_autovacuum) END::float8 AS last_autovacuum_epoch,
       CASE WHEN r.is_table THEN extract(epoch FROM r.last_analyze) END::float8 AS last_analyze_epoch,
       CASE WHEN r.is_table THEN extract(epoch FROM r.last_autoanalyze) END::float8 AS last_autoanalyze_epoch,
       CASE WHEN r.is_table THEN r.autovacuum_count END::float8 AS autovacuum_count
FROM ranked r
LEFT JOIN pg_class p ON p.oid = r.parent_oid
ORDER BY kind DESC, schema_name, name
