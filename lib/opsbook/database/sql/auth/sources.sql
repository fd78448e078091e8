-- Which Supabase Auth tables exist here and whether this role may read them (USAGE on auth and SELECT), from the
-- catalogue alone: no name is looked up, so a role without USAGE on auth raises nothing (auth.audit_log_entries is
-- optional); any PostgreSQL.
WITH t AS (
  SELECT c.relname::text AS table_name,
         has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'auth' AND c.relname IN ('users', 'audit_log_entries')
)
SELECT EXISTS (SELECT 1 FROM t WHERE table_name = 'users') AS has_users,
       coalesce((SELECT readable FROM t WHERE table_name = 'users'), false) AS can_read_users,
       EXISTS (SELECT 1 FROM t WHERE table_name = 'audit_log_entries') AS has_audit_log,
       coalesce((SELECT readable FROM t WHERE table_name = 'audit_log_entries'), false) AS can_read_audit_log
ORDER BY 1
