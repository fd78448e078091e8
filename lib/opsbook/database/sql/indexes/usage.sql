-- Every index outside system and platform schemas: size, scans since statistics began, whether it enforces a constraint, which foreign keys it is the only index for, and its table's reads; PostgreSQL 13+.
-- No pg_get_indexdef() here (0.5 s of 0.75 s on 20,000 indexes): indexes/definitions.sql deparses the reported ones.
WITH fk_cover AS (  -- the valid, non-partial indexes whose leading key columns are a foreign key's (any order)
    SELECT k.oid AS conoid, k.conname, x.indexrelid
    FROM pg_constraint k
    JOIN pg_index x ON x.indrelid = k.conrelid AND x.indisvalid AND x.indpred IS NULL
     AND x.indnkeyatts >= cardinality(k.conkey)
     AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] @> k.conkey
     AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] <@ k.conkey
    WHERE k.contype = 'f'
), sole AS (  -- an index that is the only one covering a foreign key: dropping it makes every parent write scan
    SELECT indexrelid, string_agg(conname, ', ' ORDER BY conname) AS needed_by_fk
    FROM (SELECT c.*, count(*) OVER (PARTITION BY c.conoid) AS covering FROM fk_cover c) c
    WHERE covering = 1
    GROUP BY indexrelid
)
SELECT n.nspname AS schema_name,
       t.relname AS table_name,
       c.relname AS index_name,
       c.oid::bigint AS index_oid,
       pg_relation_size(c.oid)::float8 AS size_bytes,
       coalesce(s.idx_scan, 0)::float8 AS idx_scan,
       x.indisunique AS is_unique,
       x.indisprimary AS is_primary,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) AS backs_constraint,
       x.indisvalid AS is_valid,
       so.needed_by_fk,
       (coalesce(ts.seq_scan, 0) + coalesce(ts.idx_scan, 0))::float8 AS table_reads,
       coalesce(ts.n_tup_ins + ts.n_tup_upd + ts.n_tup_del, 0)::float8 AS table_writes
FROM pg_index x
JOIN pg_class c ON c.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = c.oid
LEFT JOIN pg_stat_all_tables ts ON ts.relid = t.oid
LEFT JOIN sole so ON so.indexrelid = c.oid
WHERE n.nspname <> ALL (:excluded_schemas)
ORDER BY size_bytes DESC, schema_name, index_name
