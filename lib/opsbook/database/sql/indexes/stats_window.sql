-- How long the usage statistics have been collecting: since pg_stat_database.stats_reset and since the server started; PostgreSQL 13+.
SELECT extract(epoch FROM now() - d.stats_reset)::float8 AS since_reset_s,
       extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS since_start_s,
       current_setting('server_version_num')::int AS server_version_num
FROM pg_stat_database d
WHERE d.datname = current_database()
ORDER BY 1
