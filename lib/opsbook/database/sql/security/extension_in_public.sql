-- Extensions installed into schema public (their functions and tables land where the API serves them);
-- PostgreSQL 13+.
SELECT e.extname::text AS extension_name, e.extversion AS version, e.extrelocatable AS relocatable
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE n.nspname = 'public'
ORDER BY extension_name
