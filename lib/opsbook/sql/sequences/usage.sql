-- Every sequence with its last value, the column it feeds and that column's type limit; PostgreSQL 13+.
-- The usable maximum is the smaller of the sequence's max_value and the owning column's type (int4 PK with a
-- bigint sequence fails at 2^31-1). Columns found through ownership (serial, identity) or a nextval() default.
-- The limits stay bigint: as float8 the bigint maximum 9223372036854775807 would read ...808.
WITH feeds AS (
    SELECT DISTINCT ON (d.objid) d.objid AS seqid, d.refobjid AS relid, d.refobjsubid AS attnum
    FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    ORDER BY d.objid
), defaults AS (
    SELECT DISTINCT ON (dep.refobjid) dep.refobjid AS seqid, ad.adrelid AS relid, ad.adnum AS attnum
    FROM pg_attrdef ad
    JOIN pg_depend dep ON dep.objid = ad.oid AND dep.classid = 'pg_attrdef'::regclass
     AND dep.refclassid = 'pg_class'::regclass
    ORDER BY dep.refobjid, ad.adrelid
)
SELECT s.schemaname AS schema_name,
       s.sequencename AS sequence_name,
       s.data_type::text AS sequence_type,
       s.last_value::float8 AS last_value,
       s.increment_by::float8 AS increment_by,
       s.max_value AS sequence_max,
       s.cycle,
       tn.nspname AS table_schema,
       t.relname AS table_name,
       a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type,
       (CASE a.atttypid WHEN 'int2'::regtype THEN 32767 WHEN 'int4'::regtype THEN 2147483647
                        ELSE 9223372036854775807 END)::bigint AS column_max,
       least(s.max_value, CASE a.atttypid WHEN 'int2'::regtype THEN 32767
                                           WHEN 'int4'::regtype THEN 2147483647
                                           ELSE 9223372036854775807 END)::bigint AS usable_max,
       round((100.0 * coalesce(s.last_value, s.start_value)::float8
              / least(s.max_value::float8, CASE a.atttypid WHEN 'int2'::regtype THEN 32767
                                                            WHEN 'int4'::regtype THEN 2147483647
                                                            ELSE 9223372036854775807 END))::numeric, 3)::float8
         AS pct_used
FROM pg_sequences s
JOIN pg_class sc ON sc.relname = s.sequencename
JOIN pg_namespace sn ON sn.oid = sc.relnamespace AND sn.nspname = s.schemaname
LEFT JOIN LATERAL (SELECT * FROM feeds f WHERE f.seqid = sc.oid
                   UNION ALL SELECT * FROM defaults df WHERE df.seqid = sc.oid LIMIT 1) o ON true
LEFT JOIN pg_class t ON t.oid = o.relid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = o.relid AND a.attnum = o.attnum
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
ORDER BY pct_used DESC NULLS LAST, schema_name, sequence_name
