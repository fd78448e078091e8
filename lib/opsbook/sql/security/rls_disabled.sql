-- Tables in the API-exposed schemas without row-level security, with what each API role may do on them (column
-- grants count for SELECT/INSERT/UPDATE); only rows where the role may do something; PostgreSQL 13+.
SELECT schema_name, table_name, role_name, privileges, rows_est
FROM (
  SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, r.rolname AS role_name,
         array_to_string(ARRAY[
           CASE WHEN has_any_column_privilege(r.rolname, c.oid, 'SELECT') THEN 'SELECT' END,
           CASE WHEN has_any_column_privilege(r.rolname, c.oid, 'INSERT') THEN 'INSERT' END,
           CASE WHEN has_any_column_privilege(r.rolname, c.oid, 'UPDATE') THEN 'UPDATE' END,
           CASE WHEN has_table_privilege(r.rolname, c.oid, 'DELETE') THEN 'DELETE' END], ', ') AS privileges,
         greatest(c.reltuples, 0)::float8 AS rows_est
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN unnest(CAST(:api_roles AS text[])) AS r(rolname)
  WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AND n.nspname = ANY (CAST(:api_schemas AS text[]))
    AND has_schema_privilege(r.rolname, n.oid, 'USAGE')
) t
WHERE privileges <> ''
ORDER BY schema_name, table_name, role_name
