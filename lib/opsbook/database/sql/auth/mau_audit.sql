-- Supabase Auth monthly active users as Supabase counts them: signed in (auth.users.last_sign_in_at) or logged in / refreshed a token / signed up (auth.audit_log_entries) within the :days days up to :as_of (NULL: now); Supabase auth schema.
WITH w AS (SELECT coalesce(CAST(:as_of AS timestamptz), now()) AS until),
signed_in AS (
  SELECT u.id::text AS user_id FROM auth.users u, w
  WHERE u.last_sign_in_at > w.until - make_interval(days => :days) AND u.last_sign_in_at <= w.until
),
audited AS (  -- json_to_record parses each payload once (payload is json, not jsonb): half the time of two ->>
  SELECT DISTINCT p.actor_id AS user_id
  FROM auth.audit_log_entries a, w, json_to_record(a.payload) AS p(actor_id text, action text)
  WHERE a.created_at > w.until - make_interval(days => :days) AND a.created_at <= w.until
    AND p.action IN ('login', 'token_refreshed', 'user_signedup')
    AND p.actor_id IS NOT NULL
)
SELECT (SELECT count(*) FROM (SELECT user_id FROM signed_in UNION SELECT user_id FROM audited) u)::float8 AS mau,
       (SELECT count(*) FROM auth.users)::float8 AS users_total,
       (SELECT count(*) FROM signed_in)::float8 AS signed_in,
       (SELECT count(*) FROM audited)::float8 AS audit_actors
ORDER BY 1
