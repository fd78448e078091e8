-- Every installed extension with its schema, installed version and the default version the server's control file
-- names (the one CREATE EXTENSION and ALTER EXTENSION ... UPDATE pick), and how many versions are installable;
-- read from pg_extension and pg_available_extension_versions, no extension is called; PostgreSQL 13+.
SELECT e.extname::text AS extension_name, n.nspname::text AS schema_name, e.extversion AS installed_version,
       (SELECT a.default_version FROM pg_available_extensions a WHERE a.name = e.extname) AS default_version,
       (SELECT count(*) FROM pg_available_extension_versions v WHERE v.name = e.extname)::int AS versions_available
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
ORDER BY extension_name
