-- Roles that can log in with superuser, replication or BYPASSRLS; bootstrap marks the cluster's initial superuser
-- (oid 10, the platform's own); PostgreSQL 13+.
SELECT rolname::text AS role_name, rolsuper AS superuser, rolreplication AS replication, rolbypassrls AS bypassrls,
       oid = 10 AS bootstrap, rolvaliduntil AS valid_until
FROM pg_roles
WHERE rolcanlogin AND (rolsuper OR rolreplication OR rolbypassrls)
ORDER BY role_name
