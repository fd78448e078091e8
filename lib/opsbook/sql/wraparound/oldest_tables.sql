-- The tables of this database with the oldest relfrozenxid: the ones VACUUM (FREEZE) must reach first (size from relpages: no lock taken); PostgreSQL 13+.
SELECT c.oid::regclass::text AS table_name,
       age(c.relfrozenxid)::bigint AS xid_age,
       c.relpages::bigint * current_setting('block_size')::bigint AS size_bytes
FROM pg_class c
WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'
ORDER BY age(c.relfrozenxid) DESC, c.oid
LIMIT 5
