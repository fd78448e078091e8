-- Estimated table bloat from planner statistics (pg_stats widths and null fractions, reltuples): the ioguix/pgexperts heap estimate with 8-byte alignment, as postgres-checkup; analyzed tables only; PostgreSQL 13+.
WITH widths AS (
    SELECT s.schemaname, s.tablename,
           sum((1 - s.null_frac) * s.avg_width)::float8 AS data_width,
           bool_or(s.null_frac > 0) AS has_nulls
    FROM pg_stats s
    WHERE s.schemaname <> ALL (:excluded_schemas) AND NOT s.inherited
    GROUP BY 1, 2
), t AS (
    SELECT n.nspname AS schema_name, c.relname AS table_name, c.reltuples::float8 AS rows_est,
           pg_relation_size(c.oid)::float8 AS heap_bytes,
           current_setting('block_size')::float8 AS bs,
           coalesce((SELECT option_value::int FROM pg_options_to_table(c.reloptions)
                     WHERE option_name = 'fillfactor'), 100)::float8 AS fillfactor,
           -- tuple: 23-byte header (+ null bitmap) aligned to 8, data aligned to 8, a 4-byte line pointer
           (ceil((23 + CASE WHEN w.has_nulls THEN ceil(c.relnatts / 8.0) ELSE 0 END) / 8.0) * 8
            + ceil(w.data_width / 8.0) * 8 + 4)::float8 AS tuple_bytes
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN widths w ON w.schemaname = n.nspname AND w.tablename = c.relname
    WHERE c.relkind = 'r' AND c.reltuples > 0
)
SELECT schema_name, table_name, rows_est, heap_bytes,
       (ceil(rows_est / floor((bs - 24) * fillfactor / 100 / tuple_bytes)) * bs)::float8 AS expected_bytes,
       greatest(heap_bytes - ceil(rows_est / floor((bs - 24) * fillfactor / 100 / tuple_bytes)) * bs, 0)::float8
         AS bloat_bytes,
       round((100 * greatest(heap_bytes - ceil(rows_est / floor((bs - 24) * fillfactor / 100 / tuple_bytes)) * bs, 0)
              / nullif(heap_bytes, 0))::numeric, 1)::float8 AS bloat_pct
FROM t
ORDER BY bloat_bytes DESC, schema_name, table_name
