-- Every row-level security policy outside the schemas in :excluded_schemas (the checks keep realtime and storage,
-- whose policies users write), with its table's RLS switch, command,
-- roles ('public' for PUBLIC) and expressions; PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, c.relrowsecurity AS rls_enabled,
       p.polname::text AS policy_name, p.polpermissive AS permissive,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE'
                     ELSE 'ALL' END AS command,
       ARRAY(SELECT CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END
             FROM unnest(p.polroles) AS x ORDER BY 1) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr,
       n.nspname = ANY (CAST(:api_schemas AS text[])) AS in_api
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> ALL (:excluded_schemas)
ORDER BY schema_name, table_name, policy_name
