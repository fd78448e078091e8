-- Views and materialized views in the API-exposed schemas built on auth.users, with the API roles that may read
-- them and whether they run with the caller's rights; auth.users is found in the catalogue, never looked up by name
-- (a role without USAGE on auth may not); PostgreSQL 13+ (security_invoker exists from 15).
WITH u AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'auth' AND c.relname = 'users'
)
SELECT DISTINCT n.nspname::text AS schema_name, c.relname::text AS view_name,
       CASE c.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END AS kind,
       coalesce(array_to_string(c.reloptions, ','), '') ~* 'security_invoker=(true|on|yes|1)' AS security_invoker,
       array_to_string(ARRAY(SELECT r FROM unnest(CAST(:api_roles AS text[])) AS r
                             WHERE has_table_privilege(r, c.oid, 'SELECT')
                               AND has_schema_privilege(r, n.oid, 'USAGE') ORDER BY 1), ', ') AS readers,
       array_to_string(ARRAY(SELECT r FROM unnest(CAST(:api_roles AS text[])) AS r
                             WHERE has_table_privilege(r, u.oid, 'SELECT') ORDER BY 1), ', ')
         AS auth_users_readers
FROM u
JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = u.oid AND d.classid = 'pg_rewrite'::regclass
JOIN pg_rewrite w ON w.oid = d.objid
JOIN pg_class c ON c.oid = w.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY (CAST(:api_schemas AS text[]))
ORDER BY schema_name, view_name
