-- Whether the server offers SSL, where it listens, and each client backend's SSL state and address as far as this
-- role may see (rows of other roles' sessions come with backend_type and client_port NULL: counted as hidden);
-- PostgreSQL 13+.
SELECT current_setting('ssl') AS ssl_setting, current_setting('listen_addresses') AS listen_addresses,
       a.pid, a.usename::text AS role_name, host(a.client_addr) AS client_addr, a.client_port,
       s.ssl AS ssl_used, s.version AS ssl_version
FROM pg_stat_activity a
LEFT JOIN pg_stat_ssl s ON s.pid = a.pid
WHERE (a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.usename IS NOT NULL))
  AND a.pid <> pg_backend_pid()
ORDER BY a.pid
