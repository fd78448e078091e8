-- Standbys streaming from this server with their replay lag, or, on a standby, its own distance behind the primary; PostgreSQL 13+.
SELECT application_name AS standby,
       client_addr::text AS client_addr,
       state,
       sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS replay_lag_bytes,
       EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_s,
       false AS is_this_server
FROM pg_stat_replication
WHERE NOT pg_is_in_recovery()
UNION ALL
SELECT 'this server (standby)',
       NULL,
       CASE WHEN pg_is_wal_replay_paused() THEN 'replay paused' ELSE 'replaying' END,
       NULL,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END::float8,
       true
WHERE pg_is_in_recovery()
ORDER BY replay_lag_bytes DESC NULLS LAST, standby
