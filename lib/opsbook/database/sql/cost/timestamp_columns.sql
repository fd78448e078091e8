-- Per user table: its creation-time column (first of :column_names it has), its size with indexes and TOAST, the planner's histogram and most common values of that column in epoch seconds, and whether sampling it would run its row-level security policies as opsbook (policies_would_run); PostgreSQL 13+.
WITH cols AS (
  SELECT DISTINCT ON (c.oid) c.oid, n.nspname AS schema, c.relname AS table_name, a.attname AS column_name,
         format_type(a.atttypid, a.atttypmod) AS column_type
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE c.relkind = 'r'
    AND n.nspname <> ALL (:excluded_schemas)
    AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
    AND a.attname = ANY (CAST(:column_names AS text[]))
  ORDER BY c.oid, array_position(CAST(:column_names AS text[]), a.attname::text)
)
SELECT cols.schema, cols.table_name, cols.column_name, cols.column_type,
       pg_total_relation_size(cols.oid) AS total_bytes,
       c.reltuples::float8 AS rows_estimate,
       c.relpages::bigint AS pages,
       s.null_frac::float8 AS null_frac,
       ARRAY(SELECT extract(epoch FROM b)::float8
             FROM unnest(s.histogram_bounds::text::timestamptz[]) b) AS histogram_epoch,
       ARRAY(SELECT extract(epoch FROM v)::float8
             FROM unnest(s.most_common_vals::text::timestamptz[]) v) AS mcv_epoch,
       s.most_common_freqs::float8[] AS mcv_freqs,
       c.relrowsecurity AND NOT me.bypass AS policies_would_run
FROM cols
JOIN pg_class c ON c.oid = cols.oid
CROSS JOIN (SELECT rolsuper OR rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user) me
LEFT JOIN pg_stats s ON s.schemaname = cols.schema AND s.tablename = cols.table_name
                    AND s.attname = cols.column_name AND NOT s.inherited
ORDER BY total_bytes DESC, cols.schema, cols.table_name
