-- Every index outside system and platform schemas: size, scans since statistics began, whether it enforces a constraint, and its table's reads; PostgreSQL 13+.
SELECT n.nspname AS schema_name,
       t.relname AS table_name,
       c.relname AS index_name,
       pg_relation_size(c.oid)::float8 AS size_bytes,
       coalesce(s.idx_scan, 0)::float8 AS idx_scan,
       x.indisunique AS is_unique,
       x.indisprimary AS is_primary,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) AS backs_constraint,
       x.indisvalid AS is_valid,
       (coalesce(ts.seq_scan, 0) + coalesce(ts.idx_scan, 0))::float8 AS table_reads,
       coalesce(ts.n_tup_ins + ts.n_tup_upd + ts.n_tup_del, 0)::float8 AS table_writes,
       pg_get_indexdef(c.oid) AS definition
FROM pg_index x
JOIN pg_class c ON c.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = c.oid
LEFT JOIN pg_stat_all_tables ts ON ts.relid = t.oid
WHERE n.nspname <> ALL (:excluded_schemas)
ORDER BY size_bytes DESC, schema_name, index_name
