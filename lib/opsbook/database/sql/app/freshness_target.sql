-- A table and timestamp column named in a freshness rule: whether they exist, their type, identifiers quoted for use in SQL, whether an index leads with the column, and why reading it would run user code (unsafe); PostgreSQL 13+.
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS table_ident,
       quote_ident(a.attname) AS column_ident,
       format_type(a.atttypid, a.atttypmod) AS column_type,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum) AS indexed,
       greatest(c.reltuples, 0)::float8 AS estimated_rows,
       CASE WHEN c.relkind NOT IN ('r', 'p', 'm')
              THEN 'a view or foreign table: reading it would run code its owner wrote, with opsbook''s privileges'
            WHEN c.relrowsecurity AND NOT me.bypass
              THEN 'row-level security is on and this role does not bypass it: its policies would run with '
                   'opsbook''s privileges (use a role with BYPASSRLS or pg_read_all_data and BYPASSRLS)'
            WHEN a.atttypid IS NOT NULL AND a.atttypid NOT IN ('pg_catalog.timestamptz'::regtype,
                 'pg_catalog.timestamp'::regtype, 'pg_catalog.date'::regtype)
              THEN 'the column is a ' || format_type(a.atttypid, a.atttypmod) || ', not a built-in time type'
       END AS unsafe
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT rolsuper OR rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user) me
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = :column_name AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = :schema_name AND c.relname = :table_name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY 1
