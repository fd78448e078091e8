-- Rows older than :cutoff_epoch in a bounded sample of one table ({relation}, column {column}: identifiers quoted by the caller); PostgreSQL 13+.
SELECT count(*) FILTER (WHERE {column} < to_timestamp(:cutoff_epoch))::bigint AS older,
       count({column})::bigint AS dated,
       count(*)::bigint AS sampled
FROM (SELECT {column} FROM {relation} TABLESAMPLE SYSTEM (:pct) LIMIT :max_rows) s
