-- Who this database is to the security checks, from the catalogue alone (no object name is looked up, so a role
-- without USAGE on auth or storage, as Supabase sets them up, raises nothing): the API roles that exist, the
-- auth/storage tables and whether this role may read them, the PostgREST schema setting of this session and of
-- role authenticator, and who we are; PostgreSQL 13+.
WITH platform AS (
  SELECT n.nspname::text AS schema_name, c.relname::text AS table_name,
         has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE (n.nspname = 'auth' AND c.relname = 'users') OR (n.nspname = 'storage' AND c.relname IN ('buckets', 'objects'))
)
SELECT ARRAY(SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated') ORDER BY 1) AS api_roles,
       EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') AS has_auth,
       EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'storage') AS has_storage,
       EXISTS (SELECT 1 FROM platform WHERE schema_name = 'auth') AS has_auth_users,
       (SELECT count(*) FROM platform WHERE schema_name = 'storage') = 2 AS has_storage_tables,
       coalesce((SELECT bool_and(readable) FROM platform WHERE schema_name = 'auth'), false) AS can_read_auth_users,
       coalesce((SELECT bool_and(readable) FROM platform WHERE schema_name = 'storage'), false)
         AS can_read_storage_tables,
       current_setting('pgrst.db_schemas', true) AS session_db_schemas,
       (SELECT substr(cfg, length('pgrst.db_schemas=') + 1)
          FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) AS cfg
         WHERE r.rolname = 'authenticator' AND cfg LIKE 'pgrst.db\_schemas=%'
         ORDER BY s.setdatabase DESC LIMIT 1) AS authenticator_db_schemas,
       current_user::text AS current_user_name,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_superuser,
       ARRAY(SELECT nspname::text FROM pg_namespace ORDER BY 1) AS schemas
