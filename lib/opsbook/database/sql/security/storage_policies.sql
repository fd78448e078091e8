-- Row-level security policies on storage.objects that can let a client list objects (SELECT or ALL, permissive),
-- with their roles and USING expression; storage.objects is found in the catalogue, never looked up by name (a role
-- without USAGE on storage may not); PostgreSQL 13+.
SELECT p.polname::text AS policy_name,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' ELSE 'ALL' END AS command,
       ARRAY(SELECT CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END
             FROM unnest(p.polroles) AS x ORDER BY 1) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       c.relrowsecurity AS rls_enabled
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'storage' AND c.relname = 'objects' AND p.polcmd IN ('r', '*') AND p.polpermissive
ORDER BY policy_name
