-- Who this database is to the security checks: the API roles that exist, the auth/storage schemas, the PostgREST
-- schema setting of this session and of role authenticator, and who we are; PostgreSQL 13+.
SELECT ARRAY(SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated') ORDER BY 1) AS api_roles,
       to_regnamespace('auth') IS NOT NULL AS has_auth,
       to_regnamespace('storage') IS NOT NULL AS has_storage,
       to_regclass('auth.users') IS NOT NULL AS has_auth_users,
       to_regclass('storage.buckets') IS NOT NULL AND to_regclass('storage.objects') IS NOT NULL AS has_storage_tables,
       nullif(current_setting('pgrst.db_schemas', true), '') AS session_db_schemas,
       (SELECT substr(cfg, length('pgrst.db_schemas=') + 1)
          FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) AS cfg
         WHERE r.rolname = 'authenticator' AND cfg LIKE 'pgrst.db\_schemas=%'
         ORDER BY s.setdatabase DESC LIMIT 1) AS authenticator_db_schemas,
       current_user::text AS current_user_name,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_superuser,
       ARRAY(SELECT nspname::text FROM pg_namespace ORDER BY 1) AS schemas
