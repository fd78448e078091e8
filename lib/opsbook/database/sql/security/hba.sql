-- The pg_hba.conf rules as the server parsed them (superusers, or roles granted SELECT on pg_hba_file_rules);
-- PostgreSQL 13+.
SELECT line_number, type, array_to_string(database, ',') AS databases, array_to_string(user_name, ',') AS users,
       address, netmask, auth_method, error
FROM pg_hba_file_rules
ORDER BY line_number
