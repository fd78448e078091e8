-- Where pg_stat_statements is installed in this database: its schema, quoted for use as an identifier, its version,
-- and whether this role may use the schema (Supabase's `extensions` is not granted to PUBLIC: asked here, a query
-- on the view would write "permission denied for schema" into the server's log); PostgreSQL 13+.
SELECT quote_ident(n.nspname) AS schema_ident,
       n.nspname AS schema_name,
       e.extversion,
       has_schema_privilege(n.oid, 'USAGE') AS schema_usage
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
ORDER BY n.nspname
