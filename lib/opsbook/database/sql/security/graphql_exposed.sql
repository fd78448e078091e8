-- Tables, views, materialized views and foreign tables (pg_graphql's own kinds; partitioned parents it leaves out)
-- on which an API role may SELECT a column and use the schema: what pg_graphql's introspection shows that role,
-- names and columns, whatever RLS lets through; schemas in :excluded_schemas left out; PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, c.relname::text AS object_name,
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                      ELSE 'foreign table' END AS kind,
       c.relkind IN ('r', 'p') AND c.relrowsecurity AS rls_enabled, r.rolname::text AS role_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_roles r ON r.rolname = ANY (CAST(:api_roles AS text[]))
WHERE c.relkind IN ('r', 'v', 'm', 'f') AND n.nspname <> ALL (:excluded_schemas)
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast%'
  AND has_schema_privilege(r.oid, n.oid, 'USAGE') AND has_any_column_privilege(r.oid, c.oid, 'SELECT')
ORDER BY schema_name, object_name, role_name
