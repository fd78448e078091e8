-- Foreign keys with no valid, non-partial index whose leading key columns are exactly the FK's columns (in any order), with the sizes and writes that weigh them; PostgreSQL 13+.
SELECT n.nspname AS schema_name,
       t.relname AS table_name,
       k.conname AS constraint_name,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY u.ord)
        FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum) AS columns,
       rn.nspname || '.' || r.relname AS referenced_table,
       pg_table_size(t.oid)::float8 AS table_bytes,
       greatest(t.reltuples, 0)::float8 AS rows_est,
       coalesce(st.n_tup_ins + st.n_tup_upd + st.n_tup_del, 0)::float8 AS table_writes,
       coalesce(sr.n_tup_upd + sr.n_tup_del, 0)::float8 AS referenced_updates_deletes
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class r ON r.oid = k.confrelid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
LEFT JOIN pg_stat_all_tables st ON st.relid = t.oid
LEFT JOIN pg_stat_all_tables sr ON sr.relid = r.oid
WHERE k.contype = 'f' AND n.nspname <> ALL (:excluded_schemas)
  AND NOT EXISTS (
    SELECT 1 FROM pg_index x
    WHERE x.indrelid = k.conrelid AND x.indisvalid AND x.indpred IS NULL
      AND x.indnkeyatts >= cardinality(k.conkey)
      AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] @> k.conkey
      AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] <@ k.conkey)
ORDER BY table_bytes DESC, schema_name, table_name, constraint_name
