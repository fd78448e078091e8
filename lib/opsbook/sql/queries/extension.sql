-- Where pg_stat_statements is installed in this database: its schema, quoted for use as an identifier, and its version; PostgreSQL 13+.
SELECT quote_ident(n.nspname) AS schema_ident,
       n.nspname AS schema_name,
       e.extversion
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
ORDER BY n.nspname
