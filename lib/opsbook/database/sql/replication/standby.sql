-- Whether this server is a standby (in recovery) and, where this role may read pg_stat_wal_receiver, the primary it streams from (host and port of primary_conninfo); PostgreSQL 13+.
SELECT pg_is_in_recovery() AS in_recovery,
       w.sender_host AS primary_host,
       w.sender_port AS primary_port
FROM (SELECT 1) AS one
LEFT JOIN pg_stat_wal_receiver w ON true
ORDER BY 1
