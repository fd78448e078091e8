-- Every sequence with its last value, judged against every column it feeds (one row per sequence: the column closest to its limit first, all of them in fed_columns); PostgreSQL 13+.
-- The usable maximum is the smaller of the sequence's max_value and the column's type (an int4 column fed by a
-- bigint sequence fails at 2^31-1). Columns found through ownership (serial, identity) and every nextval() default,
-- so a sequence shared by a bigint owner and an int4 column is judged by the int4 one (as pghero and
-- postgres-checkup do). A sequence this role may not read (no SELECT or USAGE) has last_value NULL: hidden.
-- The limits stay bigint: as float8 the bigint maximum 9223372036854775807 would read ...808.
WITH feeds AS (
    SELECT d.objid AS seqid, d.refobjid AS relid, d.refobjsubid AS attnum
    FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    UNION
    SELECT dep.refobjid, ad.adrelid, ad.adnum
    FROM pg_attrdef ad
    JOIN pg_depend dep ON dep.objid = ad.oid AND dep.classid = 'pg_attrdef'::regclass
     AND dep.refclassid = 'pg_class'::regclass
    JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
), seqs AS (
    SELECT sc.oid AS seqid, s.schemaname, s.sequencename, s.data_type, s.last_value, s.start_value, s.increment_by,
           s.max_value, s.cycle, NOT has_sequence_privilege(sc.oid, 'SELECT,USAGE') AS hidden
    FROM pg_sequences s
    JOIN pg_namespace sn ON sn.nspname = s.schemaname
    JOIN pg_class sc ON sc.relname = s.sequencename AND sc.relnamespace = sn.oid
    WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
), judged AS (
    SELECT q.*, tn.nspname AS table_schema, t.relname AS table_name, a.attname AS column_name,
           format_type(a.atttypid, a.atttypmod) AS column_type,
           (CASE a.atttypid WHEN 'int2'::regtype THEN 32767 WHEN 'int4'::regtype THEN 2147483647
                            ELSE 9223372036854775807 END)::bigint AS column_max
    FROM seqs q
    LEFT JOIN feeds f ON f.seqid = q.seqid
    LEFT JOIN pg_class t ON t.oid = f.relid
    LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = f.relid AND a.attnum = f.attnum AND NOT a.attisdropped
), fed AS (
    SELECT seqid, count(column_name)::int AS fed_count,
           string_agg(table_schema || '.' || table_name || '.' || column_name || ' (' || column_type || ')', ', '
                      ORDER BY column_max, table_schema, table_name, column_name) AS fed_columns
    FROM judged
    GROUP BY seqid
), worst AS (  -- per sequence, the column that reaches its limit first
    SELECT DISTINCT ON (j.seqid) j.*,
           least(j.max_value, coalesce(j.column_max, 9223372036854775807))::bigint AS usable_max
    FROM judged j
    ORDER BY j.seqid, j.column_max NULLS LAST, j.table_schema, j.table_name, j.column_name
)
SELECT w.schemaname AS schema_name,
       w.sequencename AS sequence_name,
       w.data_type::text AS sequence_type,
       w.last_value::float8 AS last_value,
       w.increment_by::float8 AS increment_by,
       w.max_value AS sequence_max,
       w.cycle,
       w.hidden,
       w.table_schema,
       w.table_name,
       w.column_name,
       w.column_type,
       coalesce(w.column_max, 9223372036854775807)::bigint AS column_max,
       w.usable_max,
       f.fed_count,
       f.fed_columns,
       CASE WHEN NOT w.hidden
            THEN round((100.0 * coalesce(w.last_value, w.start_value)::float8 / w.usable_max::float8)::numeric, 3)::float8
       END AS pct_used
FROM worst w
JOIN fed f ON f.seqid = w.seqid
ORDER BY pct_used DESC NULLS LAST, schema_name, sequence_name
