-- Transaction ID and multixact age of every database against the 2^31 wraparound limit, oldest first; PostgreSQL 13+.
SELECT datname,
       age(datfrozenxid)::bigint AS xid_age,
       mxid_age(datminmxid)::bigint AS mxid_age,
       (100.0 * age(datfrozenxid) / 2147483648)::float8 AS pct_xid_used,
       (100.0 * mxid_age(datminmxid) / 2147483648)::float8 AS pct_mxid_used,
       current_setting('autovacuum_freeze_max_age')::bigint AS autovacuum_freeze_max_age
FROM pg_database
WHERE datallowconn
ORDER BY greatest(age(datfrozenxid), mxid_age(datminmxid)) DESC, datname
