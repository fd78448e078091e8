-- Supabase Auth: users signed in within the 30 days before :as_of (monthly active users) and all users; Supabase auth schema.
SELECT count(*) FILTER (WHERE last_sign_in_at > CAST(:as_of AS timestamptz) - interval '30 days'
                          AND last_sign_in_at <= CAST(:as_of AS timestamptz))::float8 AS mau,
       count(*)::float8 AS users_total
FROM auth.users
ORDER BY 1
