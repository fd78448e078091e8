-- Columns of type regproc, regprocedure, regoper, regoperator, regconfig, regdictionary, regnamespace or
-- regcollation (or arrays of them) in tables and materialized views: they store oids that pg_upgrade cannot carry
-- to a new cluster, so it refuses to run; schemas in :excluded_schemas left out; PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, a.attname::text AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE c.relkind IN ('r', 'm') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname <> ALL (:excluded_schemas) AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND coalesce(e.oid, t.oid) IN (SELECT oid FROM pg_type
                                 WHERE typnamespace = 'pg_catalog'::regnamespace
                                   AND typname IN ('regproc', 'regprocedure', 'regoper', 'regoperator', 'regconfig',
                                                   'regdictionary', 'regnamespace', 'regcollation'))
ORDER BY schema_name, table_name, column_name
