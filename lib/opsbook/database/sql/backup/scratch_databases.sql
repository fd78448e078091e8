-- Databases named like opsbook's scratch databases (opsbook_verify_*, opsbook_recover_*), oldest first; PG 13+.
SELECT d.datname AS database,
       pg_database_size(d.oid) AS size_bytes,
       (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid) AS connections
FROM pg_database d
WHERE d.datname LIKE ANY (:prefixes)
ORDER BY d.datname
