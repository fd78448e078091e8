-- Supabase Auth monthly active users from auth.users alone (no readable auth.audit_log_entries): users who signed in within the :days days up to :as_of (NULL: now); Supabase auth schema.
WITH w AS (SELECT coalesce(CAST(:as_of AS timestamptz), now()) AS until)
SELECT count(*) FILTER (WHERE u.last_sign_in_at > w.until - make_interval(days => :days)
                          AND u.last_sign_in_at <= w.until)::float8 AS mau,
       count(*)::float8 AS users_total,
       count(*) FILTER (WHERE u.last_sign_in_at > w.until - make_interval(days => :days)
                          AND u.last_sign_in_at <= w.until)::float8 AS signed_in,
       NULL::float8 AS audit_actors
FROM auth.users u, w
GROUP BY w.until
ORDER BY 1
