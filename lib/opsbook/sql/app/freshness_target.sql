-- A table and timestamp column named in a freshness rule: whether they exist, their type, identifiers quoted for use in SQL, and whether an index leads with the column; PostgreSQL 13+.
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS table_ident,
       quote_ident(a.attname) AS column_ident,
       format_type(a.atttypid, a.atttypmod) AS column_type,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum) AS indexed,
       greatest(c.reltuples, 0)::float8 AS estimated_rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = :column_name AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = :schema_name AND c.relname = :table_name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY 1
