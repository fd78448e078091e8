-- Tables with rows and their planner statistics: when last analyzed, rows changed since, whether pg_stats has anything; PostgreSQL 13+.
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       greatest(s.n_live_tup, c.reltuples, 0)::float8 AS rows_est,
       s.n_mod_since_analyze::float8 AS n_mod_since_analyze,
       round((100.0 * s.n_mod_since_analyze / nullif(greatest(s.n_live_tup, c.reltuples, 0), 0))::numeric, 1)::float8
         AS mod_pct,
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float8 AS since_analyze_s,
       (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL) AS never_analyzed
FROM pg_stat_all_tables s
JOIN pg_class c ON c.oid = s.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND greatest(s.n_live_tup, c.reltuples, 0) > 0
  AND n.nspname <> ALL (:excluded_schemas)
ORDER BY never_analyzed DESC, since_analyze_s DESC NULLS FIRST, schema_name, table_name
