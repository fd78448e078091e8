-- Normalised query text for the given queryids in this database (read only when new statements appear); none
-- (NULL) when another database's texts may not convert into this one's encoding (see queries/extension.sql: the
-- function converts every entry's text and raises an ERROR at the first that does not); PostgreSQL 13+.
SELECT DISTINCT ON (s.queryid) s.queryid::text AS queryid, left(s.query, 4000) AS query
FROM {pgss}.pg_stat_statements(current_setting('server_encoding') = 'SQL_ASCII' OR NOT EXISTS (
         SELECT FROM pg_database d
          WHERE d.datname <> current_database()
            AND d.encoding <> pg_char_to_encoding(current_setting('server_encoding'))
            AND (d.encoding = pg_char_to_encoding('SQL_ASCII') OR current_setting('server_encoding') <> 'UTF8'))) s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.queryid::text = ANY (:queryids)
ORDER BY s.queryid
