-- Foreign keys that point at one table, with their ON DELETE action: with 'cascade', deleting rows here took
-- rows there too, and those come back only by recovering that table as well (parents first); PG 13+.
SELECT n.nspname || '.' || c.relname AS referencing_table,
       k.conname AS "constraint",
       CASE k.confdeltype WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set null' WHEN 'd' THEN 'set default'
                          WHEN 'r' THEN 'restrict' ELSE 'no action' END AS on_delete
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE k.contype = 'f' AND k.confrelid = to_regclass(:table)
ORDER BY 1, 2
