-- Login roles that have a password and no VALID UNTIL; reads pg_authid (superusers only); PostgreSQL 13+.
SELECT rolname::text AS role_name, rolsuper AS superuser, oid = 10 AS bootstrap,
       CASE WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256' WHEN rolpassword LIKE 'md5%' THEN 'md5'
            ELSE 'other' END AS password_kind
FROM pg_authid
WHERE rolcanlogin AND rolpassword IS NOT NULL AND rolvaliduntil IS NULL
ORDER BY role_name
