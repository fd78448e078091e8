-- The current database's size on disk (pg_database_size: tables, indexes, TOAST, free space maps); PostgreSQL 13+.
SELECT current_database() AS datname,
       pg_database_size(current_database())::float8 AS size_bytes
ORDER BY 1
