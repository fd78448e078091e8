-- Normalised query text for the given queryids in this database (read only when new statements appear); PostgreSQL 13+.
SELECT DISTINCT ON (s.queryid) s.queryid::text AS queryid, left(s.query, 4000) AS query
FROM {pgss}.pg_stat_statements(true) s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.queryid::text = ANY (:queryids)
ORDER BY s.queryid
