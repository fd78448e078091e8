-- Schema objects a backup must bring back, one row each (kind, schema, name, definition, valid); PG 13+.
-- valid is false only for invalid indexes (a failed CREATE INDEX CONCURRENTLY): pg_dump leaves those out.
-- Platform schemas (auth, storage) are included on purpose: a restore must bring back auth.users too.
-- Objects that belong to an extension are left out: CREATE EXTENSION brings them back.
WITH ns AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema')
    AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
), ext_member AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
)
SELECT 'schema' AS kind, n.nspname AS schema, n.nspname AS name, NULL::text AS definition, true AS valid
FROM ns n
WHERE NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_namespace'::regclass AND e.objid = n.oid)
UNION ALL
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
                      ELSE 'index' END,
       n.nspname, c.relname,
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid) END,
       coalesce((SELECT x.indisvalid FROM pg_index x WHERE x.indexrelid = c.oid), true)
FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
  AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid)
  AND NOT (c.relkind IN ('i', 'I') AND EXISTS (
        SELECT 1 FROM pg_index x JOIN ext_member e ON e.classid = 'pg_class'::regclass AND e.objid = x.indrelid
        WHERE x.indexrelid = c.oid))
UNION ALL
SELECT 'row level security', n.nspname, c.relname,
       CASE WHEN c.relforcerowsecurity THEN 'enabled, forced' ELSE 'enabled' END, true
FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
WHERE c.relrowsecurity
  AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid)
UNION ALL
SELECT 'constraint', n.nspname, c.relname || '.' || k.conname, pg_get_constraintdef(k.oid), true
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN ns n ON n.oid = c.relnamespace
WHERE k.contype <> 'n'  -- NOT NULL constraints are catalogued only from PG 18 on: compare them as columns
  AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid)
UNION ALL
SELECT 'policy', n.nspname, c.relname || '.' || p.polname,
       CASE p.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert' WHEN 'w' THEN 'update' WHEN 'd' THEN 'delete'
                     ELSE 'all' END || ' to ' || coalesce((SELECT string_agg(CASE r WHEN 0 THEN 'public' ELSE r::regrole::text END, ',' ORDER BY r)
                                       FROM unnest(p.polroles) r), '') ||
       coalesce(' using ' || pg_get_expr(p.polqual, p.polrelid), ''), true
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN ns n ON n.oid = c.relnamespace
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', NULL, true
FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
WHERE NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid)
UNION ALL
SELECT 'trigger', n.nspname, c.relname || '.' || t.tgname, NULL, true
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal
  AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid)
UNION ALL
SELECT CASE t.typtype WHEN 'e' THEN 'enum type' WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range type'
                      ELSE 'composite type' END,
       n.nspname, t.typname, NULL, true
FROM pg_type t JOIN ns n ON n.oid = t.typnamespace
WHERE (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  AND NOT EXISTS (SELECT 1 FROM ext_member e WHERE e.classid = 'pg_type'::regclass AND e.objid = t.oid)
UNION ALL
SELECT 'extension', n.nspname, x.extname, x.extversion, true
FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
ORDER BY 1, 2, 3
