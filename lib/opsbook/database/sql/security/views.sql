-- Views in the API-exposed schemas with the API roles that may read them and whether they run with the caller's
-- rights (security_invoker, PostgreSQL 15+; before 15 every view runs with its owner's); PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, c.relname::text AS view_name, pg_get_userbyid(c.relowner)::text AS owner,
       coalesce(array_to_string(c.reloptions, ','), '') ~* 'security_invoker=(true|on|yes|1)' AS security_invoker,
       array_to_string(ARRAY(SELECT r FROM unnest(CAST(:api_roles AS text[])) AS r
                             WHERE has_table_privilege(r, c.oid, 'SELECT')
                               AND has_schema_privilege(r, n.oid, 'USAGE') ORDER BY 1), ', ') AS readers
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'v' AND n.nspname = ANY (CAST(:api_schemas AS text[]))
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid
                  AND e.deptype = 'e')
ORDER BY schema_name, view_name
