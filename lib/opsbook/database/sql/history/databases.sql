-- Size of every other database this role may connect to (the current one is in history/database); PostgreSQL 13+.
SELECT datname,
       pg_database_size(oid)::float8 AS size_bytes
FROM pg_database
WHERE datallowconn AND has_database_privilege(oid, 'CONNECT') AND datname <> current_database()
ORDER BY datname
