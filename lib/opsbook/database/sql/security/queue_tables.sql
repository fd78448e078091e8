-- pgmq's queue (q_*) and archive (a_*) tables with their RLS switch and what each API role may do on them, with
-- its USAGE on schema pgmq; found in the catalogue (schema pgmq present, extension or not); PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name,
       CASE WHEN c.relname LIKE 'a\_%' THEN 'archive' ELSE 'queue' END AS kind,
       c.relrowsecurity AS rls_enabled, r.rolname::text AS role_name,
       has_schema_privilege(r.oid, n.oid, 'USAGE') AS schema_usage,
       array_to_string(ARRAY[
         CASE WHEN has_any_column_privilege(r.oid, c.oid, 'SELECT') THEN 'SELECT' END,
         CASE WHEN has_any_column_privilege(r.oid, c.oid, 'INSERT') THEN 'INSERT' END,
         CASE WHEN has_any_column_privilege(r.oid, c.oid, 'UPDATE') THEN 'UPDATE' END,
         CASE WHEN has_table_privilege(r.oid, c.oid, 'DELETE') THEN 'DELETE' END], ', ') AS privileges
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_roles r ON r.rolname = ANY (CAST(:api_roles AS text[]))
WHERE n.nspname = 'pgmq' AND c.relkind IN ('r', 'p') AND (c.relname LIKE 'q\_%' OR c.relname LIKE 'a\_%')
ORDER BY schema_name, table_name, role_name
