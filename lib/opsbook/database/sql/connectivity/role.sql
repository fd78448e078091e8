-- Who opsbook is connected as: superuser, BYPASSRLS, and which of the monitoring roles it holds (by oid, so a role
-- that does not exist in this version, such as pg_read_all_data before 14, is simply not listed).
SELECT r.rolname AS role_name,
       r.rolsuper AS superuser,
       r.rolbypassrls AS bypassrls,
       ARRAY(SELECT g.rolname::text FROM pg_roles g
             WHERE g.rolname IN ('pg_monitor', 'pg_read_all_stats', 'pg_read_all_settings', 'pg_read_all_data',
                                 'pg_signal_backend')
               AND pg_has_role(r.oid, g.oid, 'USAGE')
             ORDER BY g.rolname) AS monitoring_roles
FROM pg_roles r
WHERE r.rolname = current_user
