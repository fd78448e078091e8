-- Estimated btree index bloat from planner statistics: entries of 8-byte header + key widths aligned to 8 + 4-byte line pointer, leaf pages 90% full; plain-column btree indexes of analyzed tables; PostgreSQL 13+.
WITH keys AS (
    SELECT x.indexrelid, x.indrelid,
           sum(coalesce(s.avg_width, 8))::float8 AS key_width,
           bool_and(s.avg_width IS NOT NULL) AS has_stats
    FROM pg_index x
    CROSS JOIN LATERAL unnest(string_to_array(x.indkey::text, ' ')::int2[]) AS k(attnum)
    JOIN pg_class tc ON tc.oid = x.indrelid
    JOIN pg_namespace tn ON tn.oid = tc.relnamespace
    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
    LEFT JOIN pg_stats s ON s.schemaname = tn.nspname AND s.tablename = tc.relname AND s.attname = a.attname
                        AND NOT s.inherited
    WHERE tn.nspname <> ALL (:excluded_schemas) AND x.indexprs IS NULL AND x.indisvalid
    GROUP BY x.indexrelid, x.indrelid
), i AS (
    SELECT n.nspname AS schema_name, tc.relname AS table_name, ic.relname AS index_name,
           tc.reltuples::float8 AS rows_est, pg_relation_size(ic.oid)::float8 AS index_bytes,
           current_setting('block_size')::float8 AS bs,
           (8 + ceil(k.key_width / 8.0) * 8 + 4)::float8 AS entry_bytes
    FROM keys k
    JOIN pg_class ic ON ic.oid = k.indexrelid AND ic.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
    JOIN pg_class tc ON tc.oid = k.indrelid
    JOIN pg_namespace n ON n.oid = ic.relnamespace
    WHERE k.has_stats AND tc.reltuples > 0
)
SELECT schema_name, table_name, index_name, rows_est, index_bytes,
       ((ceil(rows_est * entry_bytes / ((bs - 24 - 16) * 0.9)) + 1) * bs)::float8 AS expected_bytes,
       greatest(index_bytes - (ceil(rows_est * entry_bytes / ((bs - 24 - 16) * 0.9)) + 1) * bs, 0)::float8
         AS bloat_bytes,
       round((100 * greatest(index_bytes - (ceil(rows_est * entry_bytes / ((bs - 24 - 16) * 0.9)) + 1) * bs, 0)
              / nullif(index_bytes, 0))::numeric, 1)::float8 AS bloat_pct
FROM i
ORDER BY bloat_bytes DESC, schema_name, index_name
