-- Indexes made redundant by another valid index on the same table: an identical one (of two identical twins the less scanned goes, the used one stays), or (btree, not unique) one whose key columns are a leading prefix of the other's; PostgreSQL 13+.
WITH idx AS (
    SELECT x.indexrelid AS oid, x.indrelid, n.nspname, c.relname, c.relam, x.indisunique, x.indnkeyatts, x.indnatts,
           EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) AS backs_constraint,
           string_to_array(x.indkey::text, ' ') AS keys,
           string_to_array(x.indclass::text, ' ') AS classes,
           string_to_array(x.indcollation::text, ' ') AS colls,
           coalesce(pg_get_expr(x.indexprs, x.indrelid), '') AS exprs,
           coalesce(pg_get_expr(x.indpred, x.indrelid), '') AS pred,
           coalesce(s.idx_scan, 0) AS scans
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = x.indexrelid
    WHERE x.indisvalid AND n.nspname <> ALL (:excluded_schemas)
)
SELECT a.nspname AS schema_name,
       t.relname AS table_name,
       a.relname AS index_name,
       pg_relation_size(a.oid)::float8 AS size_bytes,
       b.relname AS covered_by,
       CASE WHEN a.keys = b.keys AND a.classes = b.classes AND a.exprs = b.exprs THEN 'identical'
            ELSE 'prefix' END AS reason,
       a.scans::float8 AS scans,
       b.scans::float8 AS covered_by_scans,
       pg_get_indexdef(a.oid) AS definition,
       pg_get_indexdef(b.oid) AS covered_by_definition
FROM idx a
JOIN idx b ON b.indrelid = a.indrelid AND b.oid <> a.oid AND b.relam = a.relam AND b.pred = a.pred
JOIN pg_class t ON t.oid = a.indrelid
WHERE NOT a.backs_constraint
  AND (
    (a.keys = b.keys AND a.classes = b.classes AND a.colls = b.colls AND a.exprs = b.exprs
     AND (b.backs_constraint OR (b.indisunique AND NOT a.indisunique)
          OR (a.indisunique = b.indisunique AND (a.scans < b.scans OR (a.scans = b.scans AND a.oid > b.oid)))))
    OR
    (NOT a.indisunique AND a.exprs = '' AND b.exprs = '' AND a.indnatts = a.indnkeyatts
     AND a.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
     AND a.indnkeyatts < b.indnkeyatts
     AND a.keys[1:a.indnkeyatts] = b.keys[1:a.indnkeyatts]
     AND a.classes[1:a.indnkeyatts] = b.classes[1:a.indnkeyatts]
     AND a.colls[1:a.indnkeyatts] = b.colls[1:a.indnkeyatts])
  )
ORDER BY size_bytes DESC, schema_name, index_name, covered_by
