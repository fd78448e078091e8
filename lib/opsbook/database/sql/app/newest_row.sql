-- The newest value of a freshness rule's column and its age in seconds (NULL: no rows with a value); {{table}} and {{column}} are identifiers quoted by the server (app/freshness_target); PostgreSQL 13+.
SELECT max({{column}})::text AS newest,
       EXTRACT(EPOCH FROM now() - max({{column}})::timestamptz)::float8 AS age_s
FROM {{table}}
