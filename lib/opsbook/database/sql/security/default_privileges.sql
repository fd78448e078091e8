-- Default privileges (ALTER DEFAULT PRIVILEGES) that grant future objects to PUBLIC or anon, by owner, schema and
-- object type; PUBLIC's built-in EXECUTE on functions and USAGE on types are left out; PostgreSQL 13+.
SELECT pg_get_userbyid(d.defaclrole)::text AS owner_role, n.nspname::text AS schema_name,
       CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                            WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' ELSE d.defaclobjtype::text END AS object_type,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
       string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges
FROM pg_default_acl d
LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN aclexplode(d.defaclacl) AS a
WHERE (a.grantee = 0 AND d.defaclobjtype NOT IN ('f', 'T')) OR pg_get_userbyid(a.grantee) = 'anon'
GROUP BY 1, 2, 3, 4
ORDER BY owner_role, schema_name NULLS FIRST, object_type, grantee
