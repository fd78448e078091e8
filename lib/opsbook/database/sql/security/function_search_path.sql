-- Functions and procedures outside the system and platform schemas whose search_path is not pinned (no
-- `SET search_path` in their definition), extension members left out; PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, p.proname::text AS function_name,
       pg_get_function_identity_arguments(p.oid) AS arguments, p.prosecdef AS security_definer,
       CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS kind, l.lanname::text AS language
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname <> ALL (:excluded_schemas)
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
  AND p.prokind IN ('f', 'p') AND l.lanname NOT IN ('c', 'internal')
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS cfg WHERE cfg LIKE 'search\_path=%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid
                  AND e.deptype = 'e')
ORDER BY schema_name, function_name, arguments
