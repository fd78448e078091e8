-- Columns whose names match :pattern (passwords, tokens, secrets, national ids, card numbers) in API-exposed tables
-- without row-level security, with the API roles that may read the column; PostgreSQL 13+.
SELECT schema_name, table_name, column_name, readers
FROM (
  SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, a.attname::text AS column_name,
         array_to_string(ARRAY(SELECT r FROM unnest(CAST(:api_roles AS text[])) AS r
                               WHERE has_column_privilege(r, c.oid, a.attnum, 'SELECT')
                                 AND has_schema_privilege(r, n.oid, 'USAGE') ORDER BY 1), ', ') AS readers
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AND n.nspname = ANY (CAST(:api_schemas AS text[]))
    AND a.attnum > 0 AND NOT a.attisdropped AND lower(replace(a.attname, '-', '_')) ~ :pattern
) t
WHERE readers <> ''
ORDER BY schema_name, table_name, column_name
