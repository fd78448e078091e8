-- Temporary files written by queries in this database since its statistics were reset, with work_mem and log_temp_files; PostgreSQL 13+.
SELECT datname,
       temp_files::bigint AS temp_files,
       temp_bytes::bigint AS temp_bytes,
       stats_reset,
       pg_size_bytes(current_setting('work_mem'))::bigint AS work_mem_bytes,
       current_setting('log_temp_files') AS log_temp_files
FROM pg_stat_database
WHERE datname = current_database()
ORDER BY datname
