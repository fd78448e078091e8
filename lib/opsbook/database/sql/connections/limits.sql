-- max_connections, the reserved slots and the client backends in use now (sessions hidden from this role included); PostgreSQL 13+ (reserved_connections is 16+ and read when present).
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved_connections,
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' OR (backend_type IS NULL AND usesysid IS NOT NULL))::int
         AS used_connections
