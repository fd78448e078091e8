-- Which Supabase Auth tables exist here and whether this role may read them (auth.audit_log_entries is optional); any PostgreSQL.
SELECT to_regclass('auth.users') IS NOT NULL AS has_users,
       coalesce(has_table_privilege(to_regclass('auth.users'), 'SELECT'), false) AS can_read_users,
       to_regclass('auth.audit_log_entries') IS NOT NULL AS has_audit_log,
       coalesce(has_table_privilege(to_regclass('auth.audit_log_entries'), 'SELECT'), false) AS can_read_audit_log
ORDER BY 1
