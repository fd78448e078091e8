-- Deadlocks the server detected in this database since its statistics were last reset (stats_reset NULL: never reset); PostgreSQL 13+.
SELECT datname,
       deadlocks::bigint AS deadlocks,
       stats_reset
FROM pg_stat_database
WHERE datname = current_database()
ORDER BY datname
