-- Indexes never scanned since the statistics were reset that back no constraint (not unique, not primary key), largest first; PostgreSQL 13+.
SELECT s.schemaname AS schema,
       s.relname AS table_name,
       s.indexrelname AS index_name,
       pg_relation_size(s.indexrelid) AS size_bytes,
       s.idx_scan AS scans,
       pg_get_indexdef(s.indexrelid) AS definition,
       (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) AS stats_reset
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0
  AND NOT i.indisunique
  AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
  AND s.schemaname <> ALL (:excluded_schemas)
ORDER BY size_bytes DESC, schema, index_name
