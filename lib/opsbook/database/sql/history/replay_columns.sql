-- Columns of the given tables, for the demo replay's row cloning: type, identity/generated/default, whether a unique index (valid or not) or a foreign key covers it; PostgreSQL 13+.
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       a.attname AS column_name,
       a.atttypid::regtype::text AS column_type,
       t.typcategory AS type_category,
       a.attidentity AS identity_kind,
       a.attgenerated AS generated_kind,
       coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS default_expr,
       EXISTS (SELECT 1 FROM pg_index x
               WHERE x.indrelid = c.oid AND x.indisunique
                 AND (a.attnum = ANY (string_to_array(x.indkey::text, ' ')::int2[])
                      OR coalesce(pg_get_expr(x.indexprs, x.indrelid), '') ~ ('\m' || a.attname || '\M'))) AS in_unique,
       EXISTS (SELECT 1 FROM pg_constraint k
               WHERE k.conrelid = c.oid AND k.contype = 'f' AND a.attnum = ANY (k.conkey)) AS in_fk,
       c.reltuples::float8 AS rows_est
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname || '.' || c.relname = ANY (:tables) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY schema_name, table_name, a.attnum
