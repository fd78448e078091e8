-- Monthly active users as Supabase counts them (signed in or refreshed a token in the window): from auth.users and auth.audit_log_entries; needs the auth schema.
WITH since AS (SELECT now() - make_interval(days => :days) AS t),
signed_in AS (
  SELECT id::text AS user_id FROM auth.users, since WHERE last_sign_in_at >= since.t
),
audited AS (  -- json_to_record parses each payload once (payload is json, not jsonb): half the time of two ->>
  SELECT DISTINCT p.actor_id AS user_id
  FROM auth.audit_log_entries a, since, json_to_record(a.payload) AS p(actor_id text, action text)
  WHERE a.created_at >= since.t
    AND p.action IN ('login', 'token_refreshed', 'user_signedup')
    AND p.actor_id IS NOT NULL
)
SELECT (SELECT count(*) FROM auth.users)::bigint AS users_total,
       (SELECT count(*) FROM signed_in)::bigint AS signed_in,
       (SELECT count(*) FROM audited)::bigint AS audit_actors,
       (SELECT count(*) FROM (SELECT user_id FROM signed_in UNION SELECT user_id FROM audited) u)::bigint
         AS active_users
