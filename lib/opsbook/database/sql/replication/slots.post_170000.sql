-- Replication slots with the WAL each one retains, its wal_status and, for logical slots, the catalog xmin it holds back; PostgreSQL 17+ (inactive_since).
SELECT slot_name,
       slot_type,
       coalesce(plugin, '') AS plugin,
       coalesce(database, '') AS database,
       active,
       active_pid,
       wal_status,
       invalidation_reason,
       safe_wal_size AS safe_wal_size_bytes,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
                       restart_lsn)::float8 AS retained_wal_bytes,
       greatest(age(xmin), age(catalog_xmin))::bigint AS xmin_age_xids,
       EXTRACT(EPOCH FROM now() - inactive_since)::float8 AS inactive_s
FROM pg_replication_slots
ORDER BY retained_wal_bytes DESC NULLS LAST, slot_name
