-- Invalid or not-ready indexes (left by a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY), excluding builds still in progress; PostgreSQL 13+.
SELECT n.nspname AS schema_name,
       t.relname AS table_name,
       c.relname AS index_name,
       pg_relation_size(c.oid)::float8 AS size_bytes,
       x.indisvalid AS is_valid,
       x.indisready AS is_ready,
       pg_get_indexdef(c.oid) AS definition
FROM pg_index x
JOIN pg_class c ON c.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (NOT x.indisvalid OR NOT x.indisready)
  AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid)
ORDER BY schema_name, table_name, index_name
