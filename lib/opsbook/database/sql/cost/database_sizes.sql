-- Size of every database on the server that this role may connect to (the disk holds them all), largest first; PostgreSQL 13+.
SELECT datname,
       CASE WHEN has_database_privilege(oid, 'CONNECT') THEN pg_database_size(oid) END AS size_bytes,
       datname = current_database() AS is_current
FROM pg_database
WHERE datallowconn
ORDER BY size_bytes DESC NULLS LAST, datname
