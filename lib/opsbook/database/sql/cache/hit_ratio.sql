-- Buffer cache hits and reads of the tables and of the indexes of this database's user schemas since the statistics were reset (pg_statio_user_* semantics, read straight from the pgstat functions: no per-table GROUP BY over pg_index on tens of thousands of relations); PostgreSQL 13+.
WITH s AS (
    SELECT CASE WHEN c.relkind = 'i' THEN 'indexes' ELSE 'tables' END AS relation_kind,
           sum(pg_stat_get_blocks_hit(c.oid))::bigint AS blks_hit,
           sum(pg_stat_get_blocks_fetched(c.oid) - pg_stat_get_blocks_hit(c.oid))::bigint AS blks_read
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm', 'i')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
    GROUP BY 1
)
SELECT k.relation_kind,
       coalesce(s.blks_hit, 0)::bigint AS blks_hit,
       coalesce(s.blks_read, 0)::bigint AS blks_read
FROM (VALUES ('tables'), ('indexes')) AS k(relation_kind)
LEFT JOIN s USING (relation_kind)
ORDER BY k.relation_kind DESC
