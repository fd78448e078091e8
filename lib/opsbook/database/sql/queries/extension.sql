-- Where pg_stat_statements is installed in this database: its schema, quoted for use as an identifier, its version,
-- and whether this role may use the schema (Supabase's `extensions` is not granted to PUBLIC: asked here, a query
-- on the view would write "permission denied for schema" into the server's log), and the other databases whose
-- statement texts may not convert into this database's encoding: pg_stat_statements converts every entry's text,
-- whichever its database, and raises an ERROR at the first that does not (SQL_ASCII texts are not checked when
-- written, and only UTF8 holds every character; a SQL_ASCII database takes any text); PostgreSQL 13+.
SELECT quote_ident(n.nspname) AS schema_ident,
       n.nspname AS schema_name,
       e.extversion,
       has_schema_privilege(n.oid, 'USAGE') AS schema_usage,
       ARRAY(SELECT d.datname::text || ' (' || pg_encoding_to_char(d.encoding) || ')' FROM pg_database d
              WHERE d.datname <> current_database() AND current_setting('server_encoding') <> 'SQL_ASCII'
                AND d.encoding <> pg_char_to_encoding(current_setting('server_encoding'))
                AND (d.encoding = pg_char_to_encoding('SQL_ASCII') OR current_setting('server_encoding') <> 'UTF8')
              ORDER BY d.datname) AS unconvertible_databases
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
ORDER BY n.nspname
