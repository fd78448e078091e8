"""What the shadow needs from the target's catalogue, read through the read-only session: tables, columns,
indexes, optimizer statistics, planner settings, and what user code could run if a statement were planned there."""
from __future__ import annotations

# The user tables whose names appear in the statements (relkind r and m: the ones a shadow can hold as tables).
TABLES = """
SELECT c.oid::bigint AS oid, n.nspname AS schema_name, c.relname AS table_name, c.relkind::text AS relkind,
       c.relpages::bigint AS relpages, c.reltuples::float8 AS reltuples, c.relallvisible::bigint AS relallvisible,
       (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint AS pages_now,
       c.relrowsecurity AS row_security, c.relhassubclass AS has_children,
       coalesce(s.n_tup_ins, 0)::bigint AS n_tup_ins, coalesce(s.n_tup_upd, 0)::bigint AS n_tup_upd,
       coalesce(s.n_tup_hot_upd, 0)::bigint AS n_tup_hot_upd, coalesce(s.n_tup_del, 0)::bigint AS n_tup_del,
       coalesce(s.seq_scan, 0)::bigint AS seq_scan, coalesce(s.idx_scan, 0)::bigint AS idx_scan,
       greatest(s.last_analyze, s.last_autoanalyze) IS NULL AS never_analyzed
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm', 'p') AND c.relname = ANY(:names) AND n.nspname <> ALL(:excluded_schemas)
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname, c.relname
"""

# Their columns; `builtin` says the type is PostgreSQL's own (pg_catalog), the only kind a shadow holds.
COLUMNS = """
SELECT a.attrelid::bigint AS oid, a.attnum::int AS attnum, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS type_sql, a.attnotnull AS not_null,
       t.typnamespace = 'pg_catalog'::regnamespace AS builtin,
       a.attcollation <> 0 AND a.attcollation NOT IN (SELECT oid FROM pg_collation
                                                      WHERE collnamespace = 'pg_catalog'::regnamespace) AS odd_collation
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY(:oids) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Their indexes; `simple` ones (plain columns, no predicate, built-in operator classes and access methods) are the
# ones the shadow copies.
INDEXES = """
SELECT i.indrelid::bigint AS oid, i.indexrelid::bigint AS index_oid, c.relname AS index_name,
       pg_get_indexdef(i.indexrelid) AS definition, i.indisunique AS is_unique,
       c.relpages::bigint AS relpages, c.reltuples::float8 AS reltuples,
       (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint AS pages_now,
       i.indexprs IS NULL AND i.indpred IS NULL AND i.indisvalid
       AND am.amname IN ('btree', 'hash', 'gist', 'gin', 'brin', 'spgist')
       AND NOT EXISTS (SELECT FROM unnest(i.indclass::oid[]) oc(oid) JOIN pg_opclass o ON o.oid = oc.oid
                       WHERE o.opcnamespace <> 'pg_catalog'::regnamespace) AS simple,
       array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, pos)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.pos)::text[] AS columns
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam
WHERE i.indrelid = ANY(:oids)
ORDER BY i.indrelid, c.relname
"""

# The optimizer statistics of their columns, as text the restore functions take (pg_stats shows only the columns
# this role may read: the rest are missing, and said so).
STATS = """
SELECT schemaname AS schema_name, tablename AS table_name, attname AS column_name, inherited,
       null_frac::float8, avg_width::int, n_distinct::float8, most_common_vals::text AS most_common_vals,
       most_common_freqs::float8[], histogram_bounds::text AS histogram_bounds, correlation::float8,
       most_common_elems::text AS most_common_elems, most_common_elem_freqs::float8[],
       elem_count_histogram::float8[]
FROM pg_stats
WHERE (schemaname, tablename) IN (SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n
                                  ON n.oid = c.relnamespace WHERE c.oid = ANY(:oids))
ORDER BY schemaname, tablename, attname, inherited
"""

# The planner's cost settings of the target, so that the shadow prices plans as the target does.
PLANNER = ("seq_page_cost", "random_page_cost", "cpu_tuple_cost", "cpu_index_tuple_cost", "cpu_operator_cost",
           "effective_cache_size", "work_mem", "effective_io_concurrency", "default_statistics_target",
           "constraint_exclusion", "from_collapse_limit", "join_collapse_limit", "enable_bitmapscan",
           "enable_hashagg", "enable_hashjoin", "enable_indexscan", "enable_indexonlyscan", "enable_material",
           "enable_mergejoin", "enable_nestloop", "enable_seqscan", "enable_sort", "enable_partitionwise_join")
SETTINGS = """
SELECT name, setting, unit FROM pg_settings WHERE name = ANY(:names) ORDER BY name
"""

# User code a plan on the target could meet besides what the statement names: index expressions and predicates,
# constraints and extended statistics of the tables that depend on a function, operator or type outside
# pg_catalog (the planner folds and evaluates those expressions), and the functions, operators and non-table types
# of the schemas that would join the search path.
TABLE_CODE = """
SELECT DISTINCT t.oid::bigint AS oid, d.refobjid::regproc::text AS code
FROM pg_class t
JOIN pg_depend d ON d.refclassid = 'pg_proc'::regclass AND (
     (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT indexrelid FROM pg_index WHERE indrelid = t.oid))
  OR (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = t.oid))
  OR (d.classid = 'pg_statistic_ext'::regclass AND d.objid IN (SELECT oid FROM pg_statistic_ext WHERE stxrelid = t.oid)))
JOIN pg_proc p ON p.oid = d.refobjid
WHERE t.oid = ANY(:oids) AND p.pronamespace <> 'pg_catalog'::regnamespace
ORDER BY 1, 2
"""
# Code a schema may hold without keeping the target plan away: owned by a superuser, or a member of an extension
# (its script was installed by the server's administrator). Anything else is a user's, and counted.
SCHEMA_CODE = """
WITH supers AS (SELECT oid FROM pg_roles WHERE rolsuper),
     ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e')
SELECT n.nspname AS schema_name,
       (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid AND p.proowner NOT IN (SELECT oid FROM supers)
          AND NOT EXISTS (SELECT FROM ext WHERE classid = 'pg_proc'::regclass AND objid = p.oid))::int AS functions,
       (SELECT count(*) FROM pg_operator o WHERE o.oprnamespace = n.oid AND o.oprowner NOT IN (SELECT oid FROM supers)
          AND NOT EXISTS (SELECT FROM ext WHERE classid = 'pg_operator'::regclass AND objid = o.oid))::int
         AS operators,
       (SELECT count(*) FROM pg_type t WHERE t.typnamespace = n.oid AND t.typrelid = 0 AND t.typelem = 0
          AND t.typowner NOT IN (SELECT oid FROM supers)
          AND NOT EXISTS (SELECT FROM ext WHERE classid = 'pg_type'::regclass AND objid = t.oid))::int AS types
FROM pg_namespace n WHERE n.nspname = ANY(:schemas) ORDER BY 1
"""


# How long the table counters (pg_stat_user_tables) have been counting: since this database's statistics reset,
# else since the server started.
WINDOW = """
SELECT extract(epoch FROM now() - coalesce(d.stats_reset, pg_postmaster_start_time()))::float8 AS window_s,
       d.stats_reset IS NOT NULL AS since_reset
FROM pg_stat_database d WHERE d.datname = current_database() ORDER BY 1
"""


def read(db, names: set[str]):
    """Everything the shadow needs about the tables named in `names`, as a dict of DataFrames."""
    import pandas as pd

    tables = db.query(TABLES, _name="tuning/tables", names=sorted(names))
    oids = [int(o) for o in tables["oid"]]
    out = {"tables": tables}
    for key, sql in (("columns", COLUMNS), ("indexes", INDEXES), ("stats", STATS), ("table_code", TABLE_CODE)):
        out[key] = db.query(sql, _name=f"tuning/{key}", oids=oids) if oids else pd.DataFrame()
    out["settings"] = db.query(SETTINGS, _name="tuning/settings", names=list(PLANNER))
    out["window"] = db.query(WINDOW, _name="tuning/window")
    schemas = sorted(set(tables["schema_name"])) if len(tables) else []
    out["schema_code"] = db.query(SCHEMA_CODE, _name="tuning/schema_code", schemas=schemas) if schemas else \
        pd.DataFrame(columns=["schema_name", "functions", "operators", "types"])
    return out
