-- Tables with row-level security on and no policy at all (only the owner and BYPASSRLS roles see rows), outside the
-- system, platform and extension schemas and extension members (pgmq's queues...); PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name,
       n.nspname = ANY (CAST(:api_schemas AS text[])) AS in_api, greatest(c.reltuples, 0)::float8 AS rows_est
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND n.nspname <> ALL (:excluded_schemas)
  AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid
                  AND e.deptype = 'e')
ORDER BY schema_name, table_name
