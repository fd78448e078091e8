-- Size of every database this role may connect to; PostgreSQL 13+.
SELECT datname,
       pg_database_size(oid)::float8 AS size_bytes
FROM pg_database
WHERE datallowconn AND has_database_privilege(oid, 'CONNECT')
ORDER BY datname
