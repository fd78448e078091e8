-- The tables of this database with the oldest relfrozenxid: the ones VACUUM (FREEZE) must reach first; names and sizes (from relpages: no lock taken) only for those five; PostgreSQL 13+.
SELECT c.oid::regclass::text AS table_name,
       age(c.relfrozenxid)::bigint AS xid_age,
       c.relpages::bigint * current_setting('block_size')::bigint AS size_bytes
FROM (SELECT oid, relfrozenxid, relpages
      FROM pg_class
      WHERE relkind IN ('r', 'm', 't') AND relfrozenxid <> '0'
      ORDER BY age(relfrozenxid) DESC, oid
      LIMIT 5) AS c
ORDER BY age(c.relfrozenxid) DESC, c.oid
