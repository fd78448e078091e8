-- Buffer cache hits and reads of this database's tables and indexes since the statistics were reset; PostgreSQL 13+.
SELECT 'tables' AS relation_kind,
       coalesce(sum(heap_blks_hit), 0)::bigint AS blks_hit,
       coalesce(sum(heap_blks_read), 0)::bigint AS blks_read
FROM pg_statio_user_tables
UNION ALL
SELECT 'indexes',
       coalesce(sum(idx_blks_hit), 0)::bigint,
       coalesce(sum(idx_blks_read), 0)::bigint
FROM pg_statio_user_indexes
ORDER BY relation_kind DESC
