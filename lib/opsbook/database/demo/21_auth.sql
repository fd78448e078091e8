-- auth.audit_log_entries, auth.users, auth.sessions: 10,000 users over two years, a third of them active, and
-- 90 days of audit log (logins, refreshes, sign-ups) with a burst of failed sign-ins in the last hour.

-- 80,000 events of active users (85%) and occasional ones, by day time over 90 days
INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
SELECT '00000000-0000-0000-0000-000000000000', md5('audit-' || e)::uuid,
       json_build_object('action', action, 'actor_id', pg_temp.uid(u), 'actor_username', pg_temp.email(u),
                         'actor_via_sso', false, 'log_type', CASE WHEN action = 'token_refreshed' THEN 'token'
                                                                   ELSE 'account' END,
                         'traits', json_build_object('provider', 'email')),
       pg_temp.daytime(d, e, 122),
       '10.' || pg_temp.ri(u, 123, 0, 255) || '.' || pg_temp.ri(u, 124, 0, 255) || '.' || pg_temp.ri(e, 125, 1, 254)
FROM generate_series(1, 80000) AS e,
     LATERAL (SELECT 90 * pg_temp.r(e, 120) AS d,
                     pg_temp.pick('{login,login,login,login,token_refreshed,token_refreshed,token_refreshed,
                       token_refreshed,logout,logout,user_modified,user_recovery_requested}', e, 121) AS action) AS x,
     LATERAL (SELECT CASE WHEN pg_temp.r(e, 126) < 0.85 THEN pg_temp.active_user(e, 127, d)
                          ELSE pg_temp.ri(e, 128, 1, pg_temp.users_at(d)) END AS u) AS y;

-- one user_signedup event per user who signed up inside the 90-day window
INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
SELECT '00000000-0000-0000-0000-000000000000', md5('signup-' || n)::uuid,
       json_build_object('action', 'user_signedup', 'actor_id', pg_temp.uid(n), 'actor_username', pg_temp.email(n),
                         'actor_via_sso', false, 'log_type', 'team',
                         'traits', json_build_object('provider', 'email')),
       pg_temp.ago(pg_temp.user_age(n)),
       '10.' || pg_temp.ri(n, 123, 0, 255) || '.' || pg_temp.ri(n, 124, 0, 255) || '.1'
FROM generate_series(1, 10000) AS n
WHERE pg_temp.user_age(n) < 90;

-- failed sign-ins: 300 scattered over 90 days, and a burst of 60 in the last hour from one address
-- against five accounts (what the security runbook's failed-login check should find)
INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
SELECT '00000000-0000-0000-0000-000000000000', md5('failed-' || f)::uuid,
       json_build_object('action', 'user_signedin', 'actor_username', pg_temp.email(u), 'log_type', 'account',
                         'error_message', 'Invalid login credentials',
                         'traits', json_build_object('provider', 'email')),
       CASE WHEN burst THEN pg_temp.t0() - pg_temp.r(f, 131) * interval '55 minutes'
            ELSE pg_temp.daytime(90 * pg_temp.r(f, 132), f, 133) END,
       CASE WHEN burst THEN '185.220.101.37'
            ELSE '10.' || pg_temp.ri(u, 123, 0, 255) || '.' || pg_temp.ri(u, 124, 0, 255) || '.7' END
FROM generate_series(1, 360) AS f,
     LATERAL (SELECT f > 300 AS burst) AS b,
     LATERAL (SELECT CASE WHEN burst THEN 3 * pg_temp.ri(f, 134, 1, 5) ELSE pg_temp.ri(f, 135, 1, 9000) END AS u) AS y;

-- users last: last_sign_in_at is the newest login in the audit log above
INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                        confirmation_sent_at, raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at,
                        updated_at, last_sign_in_at)
SELECT '00000000-0000-0000-0000-000000000000', pg_temp.uid(n), 'authenticated', 'authenticated', pg_temp.email(n),
       '$2a$10$' || substr(md5('pw' || n) || md5('salt' || n), 1, 53),
       CASE WHEN pg_temp.r(n, 100) < 0.96 THEN pg_temp.ago(pg_temp.user_age(n)) + interval '4 minutes' END,
       pg_temp.ago(pg_temp.user_age(n)),
       jsonb_build_object('provider', p, 'providers', jsonb_build_array(p)),
       jsonb_build_object('full_name', pg_temp.full_name(n),
                          'avatar_url', CASE WHEN pg_temp.r(n, 102) < 0.3 THEN 'avatars/' || pg_temp.uid(n) || '.png' END),
       false, pg_temp.ago(pg_temp.user_age(n)), pg_temp.ago(pg_temp.user_age(n) * pg_temp.r(n, 103)),
       -- the newest login in the audit log; before the window: some time between sign-up and 90 days ago
       coalesce(l.last_login, CASE WHEN pg_temp.user_age(n) < 90 THEN pg_temp.ago(pg_temp.user_age(n))
                                   ELSE pg_temp.ago(90 + (pg_temp.user_age(n) - 90) * pg_temp.r(n, 105)) END)
FROM generate_series(1, 10000) AS n
CROSS JOIN LATERAL (SELECT pg_temp.pick('{email,email,email,google,google,github}', n, 101) AS p) AS prov
LEFT JOIN (SELECT (payload ->> 'actor_id')::uuid AS id, max(created_at) AS last_login
           FROM auth.audit_log_entries WHERE payload ->> 'action' = 'login' GROUP BY 1) AS l
       ON l.id = pg_temp.uid(n);

-- 6,000 live sessions of active users, created in the last 30 days
INSERT INTO auth.sessions (id, user_id, created_at, updated_at, aal, not_after, refreshed_at, user_agent, ip)
SELECT md5('session-' || s)::uuid, pg_temp.uid(u), created, created + (ts - created) * pg_temp.r(s, 111), 'aal1',
       created + interval '30 days', (created + (ts - created) * pg_temp.r(s, 111))::timestamp,
       pg_temp.pick('{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
         "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
         "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
         "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
         "okhttp/4.12.0"}', s, 112),
       ('10.' || pg_temp.ri(s, 113, 0, 255) || '.' || pg_temp.ri(s, 114, 0, 255) || '.' || pg_temp.ri(s, 115, 1, 254))::inet
FROM generate_series(1, 6000) AS s,
     LATERAL (SELECT 30 * pg_temp.r(s, 110) AS d) AS x,
     LATERAL (SELECT pg_temp.active_user(s, 116, d) AS u, pg_temp.daytime(d, s, 117) AS created,
                     pg_temp.t0() AS ts) AS y;
