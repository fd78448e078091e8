-- Statements of this database from pg_stat_statements 1.11+, PostgreSQL 17+ (blk_read_time split into shared_ and local_blk_read_time): the top :top_n by total and by mean time; {{pgss}} is the function behind the view, qualified with the extension's schema; :with_text false reads no query text (the check's choice when another database is SQL_ASCII: the function converts every entry's text, and one that is not valid in this database's encoding raises an ERROR).
WITH s AS (
    SELECT queryid, query, calls, total_exec_time AS total_exec_ms, mean_exec_time AS mean_exec_ms, max_exec_time AS max_exec_ms,
           rows, shared_blks_hit, shared_blks_read, temp_blks_written, shared_blk_read_time + local_blk_read_time AS io_read_ms
    FROM {{pgss}}(CAST(:with_text AS boolean))
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
), ranked AS (
    SELECT s.*,
           100.0 * total_exec_ms / nullif(sum(total_exec_ms) OVER (), 0) AS pct_total_time,
           rank() OVER (ORDER BY total_exec_ms DESC) AS rank_total,
           rank() OVER (ORDER BY mean_exec_ms DESC) AS rank_mean
    FROM s
)
SELECT queryid::text AS queryid, calls::bigint AS calls, total_exec_ms::float8, mean_exec_ms::float8, max_exec_ms::float8,
       pct_total_time::float8, rows::bigint AS rows, shared_blks_hit::bigint, shared_blks_read::bigint,
       temp_blks_written::bigint, io_read_ms::float8,
       queryid IS NULL OR (CAST(:with_text AS boolean) AND (query IS NULL OR query = '<insufficient privilege>')) AS hidden,
       left(query, 2000) AS query
FROM ranked
WHERE rank_total <= :top_n OR rank_mean <= :top_n
ORDER BY total_exec_ms DESC, queryid
