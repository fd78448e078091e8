-- CREATE INDEX statements of the given indexes (by oid), only for those a check reports; PostgreSQL 13+.
SELECT x.indexrelid::bigint AS index_oid,
       pg_get_indexdef(x.indexrelid) AS definition
FROM pg_index x
WHERE x.indexrelid::bigint = ANY (:oids)
ORDER BY index_oid
