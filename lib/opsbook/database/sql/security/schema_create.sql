-- Schemas outside the system and platform ones on which PUBLIC, anon or authenticated may CREATE objects;
-- PostgreSQL 13+ (before 15 the public schema grants CREATE to PUBLIC by default).
SELECT n.nspname::text AS schema_name,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee
FROM pg_namespace n,
     aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
WHERE a.privilege_type = 'CREATE' AND n.nspname <> ALL (:excluded_schemas) AND n.nspname NOT LIKE 'pg\_%'
  AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) IN ('anon', 'authenticated'))
ORDER BY schema_name, grantee
