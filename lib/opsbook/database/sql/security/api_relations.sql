-- Materialized views and foreign tables in the API-exposed schemas (row-level security cannot guard either), with
-- the API roles that may read them; PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, c.relname::text AS relation_name,
       CASE c.relkind WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END AS kind,
       array_to_string(ARRAY(SELECT r FROM unnest(CAST(:api_roles AS text[])) AS r
                             WHERE has_table_privilege(r, c.oid, 'SELECT')
                               AND has_schema_privilege(r, n.oid, 'USAGE') ORDER BY 1), ', ') AS readers
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('m', 'f') AND n.nspname = ANY (CAST(:api_schemas AS text[]))
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid
                  AND e.deptype = 'e')
ORDER BY schema_name, relation_name
