-- Tables with dead tuples: live/dead counts, the point where autovacuum should start (per-table settings honoured), whether autovacuum is on for the table, and when it last ran; PostgreSQL 13+.
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       s.n_live_tup::float8 AS n_live_tup,
       s.n_dead_tup::float8 AS n_dead_tup,
       round((100.0 * s.n_dead_tup / nullif(s.n_live_tup + s.n_dead_tup, 0))::numeric, 1)::float8 AS dead_pct,
       (coalesce((SELECT option_value::float8 FROM pg_options_to_table(c.reloptions)
                  WHERE option_name = 'autovacuum_vacuum_threshold'),
                 current_setting('autovacuum_vacuum_threshold')::float8)
        + coalesce((SELECT option_value::float8 FROM pg_options_to_table(c.reloptions)
                    WHERE option_name = 'autovacuum_vacuum_scale_factor'),
                   current_setting('autovacuum_vacuum_scale_factor')::float8) * greatest(c.reltuples, 0))::float8
         AS autovacuum_trigger_tuples,
       (current_setting('autovacuum') = 'on'
        AND coalesce((SELECT option_value::bool FROM pg_options_to_table(c.reloptions)
                      WHERE option_name = 'autovacuum_enabled'), true)) AS autovacuum_enabled,
       extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum))::float8 AS since_vacuum_s,
       pg_table_size(c.oid)::float8 AS table_bytes
FROM pg_stat_all_tables s
JOIN pg_class c ON c.oid = s.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE s.n_dead_tup > 0 AND n.nspname <> ALL (:excluded_schemas)
ORDER BY n_dead_tup DESC, schema_name, table_name
