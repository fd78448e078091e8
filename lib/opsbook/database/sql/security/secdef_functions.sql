-- SECURITY DEFINER functions in the API-exposed schemas (PostgREST serves them as /rpc) with the API roles that may
-- execute them and whether search_path is pinned; extension members left out; PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, p.proname::text AS function_name,
       pg_get_function_identity_arguments(p.oid) AS arguments, pg_get_userbyid(p.proowner)::text AS owner,
       array_to_string(ARRAY(SELECT r FROM unnest(CAST(:api_roles AS text[])) AS r
                             WHERE has_function_privilege(r, p.oid, 'EXECUTE')
                               AND has_schema_privilege(r, n.oid, 'USAGE') ORDER BY 1), ', ') AS executors
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prosecdef AND n.nspname = ANY (CAST(:api_schemas AS text[]))
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid
                  AND e.deptype = 'e')
ORDER BY schema_name, function_name, arguments
