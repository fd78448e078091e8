-- Foreign keys from tables outside the platform schemas to a unique key of an auth table other than its primary
-- key (auth.users(email), say): Supabase Auth owns those keys and may change them in an upgrade; PostgreSQL 13+.
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, k.conname::text AS constraint_name,
       rn.nspname::text || '.' || r.relname::text AS referenced_table, i.relname::text AS referenced_key,
       pg_get_constraintdef(k.oid) AS definition
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class r ON r.oid = k.confrelid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
JOIN pg_index x ON x.indexrelid = k.conindid
JOIN pg_class i ON i.oid = x.indexrelid
WHERE k.contype = 'f' AND rn.nspname = 'auth' AND x.indisunique AND NOT x.indisprimary
  AND n.nspname <> ALL (:excluded_schemas)
ORDER BY schema_name, table_name, constraint_name
