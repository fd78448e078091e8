-- Tables in the API-exposed schemas without row-level security, with what each API role may do on them (column
-- grants count for SELECT/INSERT/UPDATE); only rows where the role may do something. Roles by oid, and one
-- combined privilege test first, to stay cheap on catalogs of tens of thousands of tables; PostgreSQL 13+.
SELECT schema_name, table_name, role_name, privileges, rows_est
FROM (
  SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, r.rolname::text AS role_name,
         array_to_string(ARRAY[
           CASE WHEN has_any_column_privilege(r.oid, c.oid, 'SELECT') THEN 'SELECT' END,
           CASE WHEN has_any_column_privilege(r.oid, c.oid, 'INSERT') THEN 'INSERT' END,
           CASE WHEN has_any_column_privilege(r.oid, c.oid, 'UPDATE') THEN 'UPDATE' END,
           CASE WHEN has_table_privilege(r.oid, c.oid, 'DELETE') THEN 'DELETE' END], ', ') AS privileges,
         greatest(c.reltuples, 0)::float8 AS rows_est
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_roles r ON r.rolname = ANY (CAST(:api_roles AS text[]))
  WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AND n.nspname = ANY (CAST(:api_schemas AS text[]))
    AND has_schema_privilege(r.oid, n.oid, 'USAGE')
    AND (has_table_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
         OR has_any_column_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE'))
) t
ORDER BY schema_name, table_name, role_name
