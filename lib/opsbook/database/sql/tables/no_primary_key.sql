-- Tables without a primary key (splinter 0004), catalogue only: regular and partitioned tables outside
-- :excluded_schemas, temporary tables and extension members; a partition is judged by its root, so partitions are
-- left out and a partitioned root carries the rows of its leaves. With the best unique index that could become the
-- key (valid, immediate, btree in default order, no expression, not partial, every key column NOT NULL; fewest
-- columns first) and the constraint that owns it, if one does; PostgreSQL 13+.
WITH RECURSIVE tree AS (
    SELECT c.oid AS root, c.oid AS relid
    FROM pg_class c
    WHERE c.relkind = 'p' AND NOT c.relispartition
    UNION ALL
    SELECT t.root, i.inhrelid
    FROM tree t
    JOIN pg_inherits i ON i.inhparent = t.relid
), keyless AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relreplident
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
      AND n.nspname <> ALL (:excluded_schemas)
      AND NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary)
      AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid
                      AND e.deptype = 'e')
)
SELECT k.nspname::text AS schema_name,
       k.relname::text AS table_name,
       k.relkind = 'p' AS partitioned,
       CASE WHEN k.relkind = 'p'
            THEN (SELECT count(*) FROM tree t JOIN pg_class l ON l.oid = t.relid
                  WHERE t.root = k.oid AND l.relkind IN ('r', 'f'))
       END::bigint AS partitions,
       CASE WHEN k.relkind = 'p'
            THEN (SELECT coalesce(sum(greatest(l.reltuples, 0)), 0) FROM tree t JOIN pg_class l ON l.oid = t.relid
                  WHERE t.root = k.oid AND l.relkind = 'r')
            ELSE greatest(c.reltuples, 0)
       END::float8 AS rows_est,
       CASE k.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'
                           WHEN 'i' THEN 'index' END AS replica_identity,
       u.index_name,
       u.index_columns,
       u.constraint_name
FROM keyless k
JOIN pg_class c ON c.oid = k.oid
LEFT JOIN LATERAL (
    SELECT i.relname::text AS index_name,
           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY s.ord)
            FROM unnest(x.indkey::int2[]) WITH ORDINALITY s(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = s.attnum
            WHERE s.ord <= x.indnkeyatts) AS index_columns,
           (SELECT o.conname::text FROM pg_constraint o WHERE o.conindid = x.indexrelid AND o.conrelid = x.indrelid
            ORDER BY o.conname LIMIT 1) AS constraint_name
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    WHERE x.indrelid = k.oid AND x.indisunique AND x.indisvalid AND x.indimmediate AND x.indpred IS NULL
      AND x.indexprs IS NULL AND i.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
      AND NOT EXISTS (SELECT 1 FROM unnest(x.indoption::int2[]) WITH ORDINALITY o(opt, ord)
                      WHERE o.ord <= x.indnkeyatts AND o.opt <> 0)
      AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey::int2[]) WITH ORDINALITY s(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = s.attnum
                      WHERE s.ord <= x.indnkeyatts AND NOT a.attnotnull)
    ORDER BY x.indnkeyatts, i.relname
    LIMIT 1
) u ON true
ORDER BY rows_est DESC, schema_name, table_name
