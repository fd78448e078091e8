-- Tables and materialized views with their estimated rows and size, for row counts and restore sizing; PG 13+.
-- Platform schemas are included (see objects.sql); extension-owned tables are not.
SELECT n.nspname AS schema,
       c.relname AS "table",
       CASE c.relkind WHEN 'm' THEN 'materialized view' ELSE 'table' END AS kind,
       c.reltuples::bigint AS estimated_rows,
       pg_total_relation_size(c.oid) AS size_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
