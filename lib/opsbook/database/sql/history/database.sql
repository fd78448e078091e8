-- One row about the current database now: size, pg_stat_database counters, stats resets, XID age, WAL position, optional features; PostgreSQL 13+.
-- The optional features are asked of the catalogue, never by name (to_regclass('auth.users') raises "permission
-- denied for schema auth" for a role without USAGE, as Supabase sets auth up): each is true only where this role
-- may read it (pgss_schema is NULL when the role may not use the extension's schema).
SELECT current_database() AS datname,
       extract(epoch FROM now())::float8 AS server_now_epoch,
       pg_database_size(current_database())::float8 AS database_size_bytes,
       d.numbackends::float8 AS backends,
       d.xact_commit::float8 AS xact_commit,
       d.xact_rollback::float8 AS xact_rollback,
       d.deadlocks::float8 AS deadlocks,
       d.conflicts::float8 AS conflicts,
       d.temp_files::float8 AS temp_files,
       d.temp_bytes::float8 AS temp_bytes,
       d.blks_hit::float8 AS blks_hit,
       d.blks_read::float8 AS blks_read,
       d.tup_inserted::float8 AS tup_inserted,
       d.tup_updated::float8 AS tup_updated,
       d.tup_deleted::float8 AS tup_deleted,
       extract(epoch FROM d.stats_reset)::float8 AS stats_reset_epoch,
       extract(epoch FROM pg_postmaster_start_time())::float8 AS postmaster_start_epoch,
       age(db.datfrozenxid)::float8 AS xid_age,
       mxid_age(db.datminmxid)::float8 AS mxid_age,
       (SELECT max(age(datfrozenxid)) FROM pg_database WHERE datallowconn)::float8 AS cluster_xid_age,
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0')::float8
         AS wal_lsn_bytes,
       pg_is_in_recovery() AS in_recovery,
       current_setting('max_connections')::float8 AS max_connections,
       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements' AND has_schema_privilege(n.oid, 'USAGE')) AS pgss_schema,
       (SELECT count(*) = 2 AND bool_and(has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'))
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'storage' AND c.relname IN ('buckets', 'objects')) AS has_storage,
       coalesce((SELECT has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'auth' AND c.relname = 'users'), false) AS has_auth
FROM pg_stat_database d
JOIN pg_database db ON db.oid = d.datid
WHERE d.datname = current_database()
ORDER BY 1
