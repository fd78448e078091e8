-- Columns of one table (a name as the user typed it, resolved by to_regclass) in order, with generated and
-- identity kinds and the 1-based position in the primary key (NULL when not part of it), and whether reading its rows
-- would run its row-level security policies as opsbook (policies_would_run); PG 13+ (attgenerated: 12+).
SELECT n.nspname AS schema,
       c.relname AS "table",
       a.attname AS "column",
       format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null,
       a.attgenerated <> '' AS generated,
       a.attidentity AS identity,
       array_position(i.indkey::int2[], a.attnum) AS pk_position,
       c.relrowsecurity AND NOT me.bypass AS policies_would_run
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT rolsuper OR rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user) me
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.oid = to_regclass(:table) AND c.relkind IN ('r', 'p')
ORDER BY a.attnum
