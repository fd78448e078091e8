-- The functions of schema pgmq_public (Supabase's wrappers that serve queues over /rpc: send, read, pop, archive,
-- delete) with whether they run as their owner and which API roles may execute them; PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, p.proname::text AS function_name,
       pg_get_function_identity_arguments(p.oid) AS arguments, p.prosecdef AS security_definer,
       pg_get_userbyid(p.proowner)::text AS owner,
       array_to_string(ARRAY(SELECT r FROM unnest(CAST(:api_roles AS text[])) AS r
                             WHERE has_function_privilege(r, p.oid, 'EXECUTE')
                               AND has_schema_privilege(r, n.oid, 'USAGE') ORDER BY 1), ', ') AS executors
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'pgmq_public'
ORDER BY schema_name, function_name, arguments
