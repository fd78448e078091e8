-- Measured (not estimated) waste of the given tables by pgstattuple_approx (visibility map: all-visible pages skipped), where the statistical estimate cannot see them; {{pgstattuple}} is the extension's quoted schema; PostgreSQL 13+ with pgstattuple.
SELECT o.table_oid,
       a.table_len::float8 AS size_bytes,
       (a.approx_free_space + a.dead_tuple_len)::float8 AS bloat_bytes,
       round((a.approx_free_percent + a.dead_tuple_percent)::numeric, 1)::float8 AS bloat_pct,
       a.approx_tuple_count::float8 AS rows_est
FROM unnest(CAST(:oids AS bigint[])) AS o(table_oid)
CROSS JOIN LATERAL {{pgstattuple}}.pgstattuple_approx(o.table_oid::oid::regclass) a
ORDER BY o.table_oid
