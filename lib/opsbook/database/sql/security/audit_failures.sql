-- Failed sign-ins in auth.audit_log_entries since :since (GoTrue writes the error into the payload), one row per
-- event with its address and account; Supabase Auth, PostgreSQL 13+.
SELECT created_at, nullif(ip_address, '') AS client_addr,
       coalesce(payload ->> 'actor_username', payload -> 'traits' ->> 'user_email', payload ->> 'actor_id')
         AS user_name,
       payload ->> 'action' AS action, payload ->> 'error_message' AS error_message
FROM auth.audit_log_entries
WHERE created_at >= :since
  AND (payload ->> 'error_message' IS NOT NULL
       OR payload ->> 'action' IN ('login_failed', 'user_signedin_failed', 'token_refresh_failed'))
ORDER BY created_at
