"""What the shadow needs from the target's catalogue, read through the read-only session: tables, columns,
indexes, optimizer statistics, planner settings, and what user code could run if a statement were planned there."""
from __future__ import annotations

# The user tables whose names appear in the statements (relkind r, m and p), and every member of the partition
# trees they belong to (a partition named in a statement brings its root and siblings: the shadow needs the whole
# tree to prune as the target does). `bound`, `partition_key`: the catalogue's own text of each member's bounds and
# key; `key_builtin`: the key uses nothing but columns, expressions, operator classes and collations of
# PostgreSQL's own (no dependency on an object of oid 16384 or more, FirstNormalObjectId). `date_style`,
# `interval_style`: the styles the bounds' literals were printed in.
TABLES = """
WITH named AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm', 'p') AND c.relname = ANY(:names) AND n.nspname <> ALL(:excluded_schemas)
      AND n.nspname NOT LIKE 'pg\\_%'),
wanted AS (
    SELECT oid, 0 AS level FROM named WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = named.oid
                                                        AND (c.relispartition OR c.relkind = 'p'))
    UNION
    SELECT t.relid, t.level FROM named, pg_partition_tree(coalesce(pg_partition_root(named.oid), named.oid)) t
    WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = named.oid AND (c.relispartition OR c.relkind = 'p')))
SELECT c.oid::bigint AS oid, n.nspname AS schema_name, c.relname AS table_name, c.relkind::text AS relkind,
       c.relpages::bigint AS relpages, c.reltuples::float8 AS reltuples, c.relallvisible::bigint AS relallvisible,
       (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint AS pages_now,
       c.relrowsecurity AS row_security, c.relhassubclass AS has_children,
       coalesce(s.n_tup_ins, 0)::bigint AS n_tup_ins, coalesce(s.n_tup_upd, 0)::bigint AS n_tup_upd,
       coalesce(s.n_tup_hot_upd, 0)::bigint AS n_tup_hot_upd, coalesce(s.n_tup_del, 0)::bigint AS n_tup_del,
       coalesce(s.seq_scan, 0)::bigint AS seq_scan, coalesce(s.idx_scan, 0)::bigint AS idx_scan,
       greatest(s.last_analyze, s.last_autoanalyze) IS NULL AS never_analyzed,
       w.level::int AS level, c.relispartition AS is_partition,
       (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition)::bigint AS parent_oid,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
       CASE WHEN c.relkind = 'p' THEN (
           SELECT NOT EXISTS (SELECT FROM unnest(pt.partclass::oid[] || pt.partcollation::oid[]) o(oid)
                              WHERE o.oid >= 16384)
              AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass,
                                                     'pg_type'::regclass, 'pg_collation'::regclass,
                                                     'pg_opclass'::regclass)
                                AND d.refobjid >= 16384)
           FROM pg_partitioned_table pt WHERE pt.partrelid = c.oid) END AS key_builtin,
       current_setting('DateStyle') AS date_style, current_setting('IntervalStyle') AS interval_style
FROM wanted w
JOIN pg_class c ON c.oid = w.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
ORDER BY w.level, n.nspname, c.relname
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

# Their indexes. `simple` ones (plain columns, no predicate, built-in operator classes and access methods) are
# the ones a longer index can make redundant. `user_code`: what an index's expressions, predicate, operator classes
# and collations depend on besides PostgreSQL's own (pg_depend: built-in objects are pinned below oid 16384,
# FirstNormalObjectId, and never recorded; its table, its parent index and its constraint are its own), NULL when
# nothing: such an index is `copyable` to the shadow, its definition built by the catalogue (pg_get_indexdef).
# `key_columns`: the key's columns in order, NULL for an expression; `predicate`: the partial index's WHERE.
INDEXES = """
SELECT i.indrelid::bigint AS oid, i.indexrelid::bigint AS index_oid, c.relname AS index_name,
       c.relkind::text AS index_kind, pg_get_indexdef(i.indexrelid) AS definition, i.indisunique AS is_unique,
       c.relpages::bigint AS relpages, c.reltuples::float8 AS reltuples,
       (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint AS pages_now,
       i.indexprs IS NULL AND i.indpred IS NULL AND i.indisvalid
       AND am.amname IN ('btree', 'hash', 'gist', 'gin', 'brin', 'spgist')
       AND NOT EXISTS (SELECT FROM unnest(i.indclass::oid[]) oc(oid) JOIN pg_opclass o ON o.oid = oc.oid
                       WHERE o.opcnamespace <> 'pg_catalog'::regnamespace) AS simple,
       array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, pos)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.pos)::text[] AS columns,
       array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, pos)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
             WHERE k.pos <= i.indnkeyatts ORDER BY k.pos)::text[] AS key_columns,
       pg_get_expr(i.indpred, i.indrelid) AS predicate, i.indexprs IS NOT NULL AS has_expressions,
       (SELECT p.inhparent FROM pg_inherits p WHERE p.inhrelid = i.indexrelid)::bigint AS parent_index_oid,
       code.user_code,
       i.indisvalid AND am.amname IN ('btree', 'hash', 'gist', 'gin', 'brin', 'spgist')
       AND code.user_code IS NULL AS copyable
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam
CROSS JOIN LATERAL (
    SELECT string_agg(DISTINCT pg_describe_object(d.refclassid, d.refobjid, 0), ', ') AS user_code
    FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.refobjid >= 16384
      AND NOT (d.refclassid = 'pg_class'::regclass AND (d.refobjid = i.indrelid OR d.refobjid IN
               (SELECT p.inhparent FROM pg_inherits p WHERE p.inhrelid = i.indexrelid)))
      AND NOT (d.refclassid = 'pg_constraint'::regclass AND d.deptype = 'i')) code
WHERE i.indrelid = ANY(:oids)
ORDER BY i.indrelid, c.relname
"""

# The statistics of expression indexes (pg_stats names them by the index; `attnum`: the index column's position,
# which pg_restore_attribute_stats takes for expression columns).
INDEX_STATS = """
SELECT s.schemaname AS schema_name, s.tablename AS index_name, a.attnum::int AS attnum, s.attname AS column_name,
       s.null_frac::float8, s.avg_width::int, s.n_distinct::float8, s.most_common_vals::text AS most_common_vals,
       s.most_common_freqs::float8[], s.histogram_bounds::text AS histogram_bounds, s.correlation::float8,
       s.most_common_elems::text AS most_common_elems, s.most_common_elem_freqs::float8[],
       s.elem_count_histogram::float8[]
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid
JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
WHERE c.oid = ANY(:oids) AND NOT s.inherited
ORDER BY 1, 2, 3
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
           "enable_mergejoin", "enable_nestloop", "enable_seqscan", "enable_sort", "enable_partitionwise_join",
           "enable_partitionwise_aggregate", "enable_partition_pruning")
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
# Every relation name of the schemas read (index names are unique per schema among all relations): a proposed
# index takes none of them
RELATION_NAMES = """
SELECT n.nspname AS schema_name, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(:schemas)
"""
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

    from .partitions import roll_up

    tables = roll_up(db.query(TABLES, _name="tuning/tables", names=sorted(names)))
    oids = [int(o) for o in tables["oid"]]
    out = {"tables": tables}
    for key, sql in (("columns", COLUMNS), ("indexes", INDEXES), ("stats", STATS), ("table_code", TABLE_CODE)):
        out[key] = db.query(sql, _name=f"tuning/{key}", oids=oids) if oids else pd.DataFrame()
    ix = out["indexes"]
    expr = [int(o) for o in ix[ix["has_expressions"] & ix["copyable"]]["index_oid"]] if len(ix) else []
    out["index_stats"] = db.query(INDEX_STATS, _name="tuning/index_stats", oids=expr) if expr else pd.DataFrame()
    out["settings"] = db.query(SETTINGS, _name="tuning/settings", names=list(PLANNER))
    out["window"] = db.query(WINDOW, _name="tuning/window")
    schemas = sorted(set(tables["schema_name"])) if len(tables) else []
    out["relation_names"] = db.query(RELATION_NAMES, _name="tuning/relation_names", schemas=schemas) if schemas \
        else pd.DataFrame(columns=["schema_name", "name"])
    out["schema_code"] = db.query(SCHEMA_CODE, _name="tuning/schema_code", schemas=schemas) if schemas else \
        pd.DataFrame(columns=["schema_name", "functions", "operators", "types"])
    return out
