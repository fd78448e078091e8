"""The shadow: a throwaway cluster holding the target's tables (columns, partition trees, indexes, sizes) and
optimizer statistics, without one row of data and without any code of the database's users: no function, operator,
type, view, policy, default or trigger is copied, and an index (expression, predicate, operator class) or a
partition key is copied only when the catalogue shows it depends on nothing but PostgreSQL's own objects, so nothing
a statement names can run there but PostgreSQL's own."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import partitions, sizes

DBNAME = "opsbook_shadow"
STAT_KEYS = (("null_frac", "real"), ("avg_width", "integer"), ("n_distinct", "real"), ("most_common_vals", "text"),
             ("most_common_freqs", "real[]"), ("histogram_bounds", "text"), ("correlation", "real"),
             ("most_common_elems", "text"), ("most_common_elem_freqs", "real[]"),
             ("elem_count_histogram", "real[]"))
SHADOW_TIMEOUT_MS = 10_000


def ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


@dataclass
class Shadow:
    """The shadow database of one run: `explain()` plans a statement there, `with_index()` tries an index."""

    cluster: object  # opsbook.database.sandbox.ScratchCluster
    conn: object  # psycopg connection as the shadow's superuser (it holds no user code)
    info: dict
    copied: list[tuple[str, str]] = field(default_factory=list)  # (schema, table)
    not_copied: dict[tuple[str, str], str] = field(default_factory=dict)  # (schema, table) -> why
    indexes_skipped: list[str] = field(default_factory=list)
    no_stats: list[str] = field(default_factory=list)  # tables whose column statistics this role could not read
    trial_errors: list[str] = field(default_factory=list)  # candidates the shadow refused, and why
    timings: dict[str, float] = field(default_factory=dict)
    search_path: str = "public"
    parents: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # partition -> its parent

    def explain(self, text: str) -> dict:
        """The generic plan of `text` here, as the JSON plan's top node (raises the server's error), each
        partition's scan named by its partitioned table at the top of the tree, and each partition's index by the
        partitioned index it is attached to (the partition's name kept under "Partition")."""
        plan = self.explain_raw(text)
        if not self.parents:
            return plan
        names = sorted(partitions.index_names(plan))
        indexes = dict(self.conn.execute(
            "SELECT c.relname, r.relname FROM pg_class c JOIN pg_class r ON r.oid = pg_partition_root(c.oid) "
            "WHERE c.relname = ANY(%s) AND c.relkind = 'i' AND c.relispartition", (names,)).fetchall()) \
            if names else {}
        return partitions.to_parents(plan, {k: self.root(k) for k in self.parents}, indexes)

    def root(self, key: tuple[str, str]) -> tuple[str, str]:
        while key in self.parents:
            key = self.parents[key]
        return key

    def members(self, key: tuple[str, str]) -> list[tuple[str, str]]:
        """The table and, when it is partitioned, every partition under it."""
        out = [key]
        for k in self.copied:
            up = self.parents.get(k)
            while up is not None and up != key:
                up = self.parents.get(up)
            if up == key:
                out.append(k)
        return out

    def explain_raw(self, text: str) -> dict:
        """The generic plan of `text` here as the server gives it."""
        import json

        with self.conn.transaction():
            self.conn.execute(f"SET LOCAL search_path = {self.search_path}")
            self.conn.execute(f"SET LOCAL statement_timeout = {SHADOW_TIMEOUT_MS}")
            row = self.conn.execute("EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) " + text).fetchone()[0]
        plan = row if isinstance(row, list) else json.loads(row)
        return plan[0]["Plan"]

    def free_name(self, schema: str, stem: str) -> str:
        """A relation name not taken in `schema` of the shadow (the target's tables and indexes are there under
        their own names, whatever they are)."""
        import uuid

        while True:
            name = f"{stem}_{uuid.uuid4().hex[:8]}"
            if not self.conn.execute("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON "
                                     "n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                                     (schema, name)).fetchone():
                return name

    @contextmanager
    def with_index(self, schema: str, table: str, columns: list[str], name: str | None = None,
                   keep: bool = False, null_column: str | None = None):
        """An index on (schema.table, columns) for the length of the block (`keep`: and after it), sized as it
        would be on the target; `null_column`: partial, on the rows where that column IS NULL. On a partitioned
        table: a partitioned index, with one per partition (each sized from its partition's rows); pages: their sum."""
        name = name or self.free_name(schema, "opsbook_candidate")
        cols = ", ".join(ident(c) for c in columns)
        where = f" WHERE {ident(null_column)} IS NULL" if null_column else ""
        self.conn.execute(f"CREATE INDEX {ident(name)} ON {qualified(schema, table)} ({cols}){where}")
        try:
            pages = 0
            for (s, t), index in self._leaf_indexes(schema, table, name):
                pages += self._size_index(s, t, index, columns, null_column)
            self._restore_tree(schema, table)  # CREATE INDEX counted 0 rows in the empty heaps
            yield name, pages
        except BaseException:
            keep = False
            raise
        finally:
            if not keep:
                self.conn.execute(f"DROP INDEX IF EXISTS {qualified(schema, name)}")
                self._restore_tree(schema, table)

    def _leaf_indexes(self, schema: str, table: str, name: str) -> list[tuple[tuple[str, str], str]]:
        if not any(self.parents.get(k) == (schema, table) for k in self.parents):
            return [((schema, table), name)]
        rows = self.conn.execute(
            "SELECT n.nspname, t.relname, c.relname FROM pg_partition_tree(%s::regclass) p "
            "JOIN pg_index i ON i.indexrelid = p.relid JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE p.isleaf ORDER BY 1, 2", (qualified(schema, name),)).fetchall()
        return [((s, t), i) for s, t, i in rows]

    def _size_index(self, schema: str, table: str, name: str, columns: list[str], null_column: str | None) -> int:
        row = self._table_row(schema, table)
        widths, distinct = [], None
        for c in columns:
            s = self._column_stats(schema, table, c)
            widths.append(float(s["avg_width"]) if s is not None else 8.0)
            if s is not None and len(columns) == 1:
                distinct = float(s["n_distinct"])
        rows = max(float(row["reltuples"]), 0.0)
        if null_column:
            s = self._column_stats(schema, table, null_column)
            rows *= float(s["null_frac"]) if s is not None else 1.0
        pages = sizes.btree_pages(rows, widths, distinct if len(columns) == 1 else -1)
        self._size(qualified(schema, name), pages)
        self._stats_call("pg_restore_relation_stats", schema, name,
                         [("relpages", pages, "integer"), ("reltuples", rows, "real")])
        return pages

    def _restore_tree(self, schema: str, table: str) -> None:
        for s, t in self.members((schema, table)):
            self._restore_relation(s, t, self._table_row(s, t))

    def _column_stats(self, schema: str, table: str, column: str):
        stats = self.info["stats"]
        if not len(stats):
            return None
        s = stats[(stats["schema_name"] == schema) & (stats["table_name"] == table)
                  & (stats["column_name"] == column) & ~stats["inherited"].astype(bool)]
        return s.iloc[0] if len(s) else None

    # ------------------------------------------------------------------ building
    def build(self) -> Shadow:
        t0 = time.perf_counter()
        tables, columns = self.info["tables"], self.info["columns"]
        schemas = set()
        own = {int(r.oid): why for r in tables.itertuples()
               if (why := _cannot_copy(r, columns[columns["oid"] == r.oid]))}
        refused = partitions.tree_refusals(tables, own)
        names = {int(r.oid): (r.schema_name, r.table_name) for r in tables.itertuples()}
        styles = {k: tables[c].iloc[0] for k, c in (("DateStyle", "date_style"), ("IntervalStyle", "interval_style"))
                  if c in tables.columns and len(tables)}
        for k, v in styles.items():  # the bounds' literals read as the target printed them
            self.conn.execute("SELECT pg_catalog.set_config(%s, %s, false)", (k, v))
        ordered = tables.sort_values("level", kind="stable") if "level" in tables.columns else tables
        for row in ordered.itertuples():
            key = names[int(row.oid)]
            if int(row.oid) in refused:
                self.not_copied[key] = refused[int(row.oid)]
                continue
            parent_oid = partitions.as_oid(getattr(row, "parent_oid", None))
            parent = names.get(parent_oid) if parent_oid is not None else None
            if parent_oid is not None and parent not in self.copied:
                self.not_copied[key] = "a partition whose partitioned table is not in the shadow"
                continue
            if row.schema_name not in schemas:
                self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(row.schema_name)}")
                schemas.add(row.schema_name)
            cols = columns[columns["oid"] == row.oid]
            body = ", ".join(f"{ident(c.column_name)} {c.type_sql}" + (" NOT NULL" if c.not_null else "")
                             for c in cols.itertuples())
            not_null = [c.column_name for c in cols.itertuples() if c.not_null]
            self.conn.execute(partitions.create_sql(row, body, qualified(*parent) if parent else None, not_null,
                                                    ident))
            self.copied.append(key)
            if parent:
                self.parents[key] = parent
        for k in styles:
            self.conn.execute(f"RESET {k}")
        self._copy_indexes()
        for schema, table in self.copied:  # after the indexes: CREATE INDEX resets the heap's counts
            row = self._table_row(schema, table)
            if row["relkind"] != "p":  # a partitioned table has no storage of its own
                self._size(qualified(schema, table), row["pages_now"])
            self._restore_relation(schema, table, row)
            self._restore_columns(schema, table)
        self._apply_settings()
        self.search_path = ", ".join(ident(s) for s in (["public"] + sorted(schemas - {"public"})))
        self.timings["build_s"] = time.perf_counter() - t0
        return self

    def _copy_indexes(self) -> None:
        """The indexes whose every dependency is PostgreSQL's own (catalog.INDEXES: copyable), parents first; each
        partition's index attached to its partitioned index as on the target; an expression's statistics."""
        indexes = self.info["indexes"]
        if not len(indexes):
            return
        tables = self.info["tables"]
        by_oid = {int(r.oid): (r.schema_name, r.table_name) for r in tables.itertuples()
                  if (r.schema_name, r.table_name) in self.copied}
        level = {int(r.oid): int(getattr(r, "level", 0) or 0) for r in tables.itertuples()}
        made: dict[int, tuple[str, str]] = {}
        attach: list[tuple[int, int]] = []
        for ix in sorted(indexes.itertuples(), key=lambda x: level.get(int(x.oid), 0)):
            key = by_oid.get(int(ix.oid))
            if key is None:
                continue
            if not ix.copyable:
                why = (f"uses {ix.user_code}, not PostgreSQL's own" if isinstance(ix.user_code, str)
                       else "not valid, or of an access method not built in")
                self.indexes_skipped.append(f"{key[0]}.{ix.index_name} ({why})")
                continue
            self.conn.execute(ix.definition)  # pg_get_indexdef: schema-qualified; its dependencies all built in
            made[int(ix.index_oid)] = (key[0], ix.index_name)
            if partitions.as_oid(ix.parent_index_oid) is not None:
                attach.append((int(ix.parent_index_oid), int(ix.index_oid)))
            if ix.index_kind != "I":  # a partitioned index has no storage of its own
                self._size(qualified(key[0], ix.index_name), ix.pages_now)
                self._stats_call("pg_restore_relation_stats", key[0], ix.index_name,
                                 [("relpages", int(ix.relpages), "integer"),
                                  ("reltuples", float(ix.reltuples), "real")])
        for parent, child in reversed(attach):  # the deepest first: a parent is valid once all are attached
            if parent in made and child in made:
                self.conn.execute(f"ALTER INDEX {qualified(*made[parent])} ATTACH PARTITION {qualified(*made[child])}")
        self._restore_index_stats(set(made.values()))

    def _restore_index_stats(self, made: set[tuple[str, str]]) -> None:
        stats = self.info.get("index_stats")
        if stats is None or not len(stats):
            return
        for s in stats.to_dict("records"):
            if (s["schema_name"], s["index_name"]) not in made:
                continue
            pairs = [("attnum", int(s["attnum"]), "smallint"), ("inherited", False, "boolean")]
            pairs += [(k, _plain(s[k]), t) for k, t in STAT_KEYS if _present(s[k])]
            self._stats_call("pg_restore_attribute_stats", s["schema_name"], s["index_name"], pairs)

    def _table_row(self, schema: str, table: str):
        t = self.info["tables"]
        return t[(t["schema_name"] == schema) & (t["table_name"] == table)].iloc[0]

    def _size(self, regclass: str, pages: int) -> None:
        path = self.conn.execute("SELECT pg_relation_filepath(%s::regclass)", (regclass,)).fetchone()[0]
        sizes.set_pages(self.cluster.data_dir, path, int(pages))

    def _restore_relation(self, schema: str, table: str, row) -> None:
        own = row["reltuples_own"] if "reltuples_own" in row.index else row["reltuples"]  # partitions.roll_up
        self._stats_call("pg_restore_relation_stats", schema, table,
                         [("relpages", int(row["relpages"]), "integer"), ("reltuples", float(own), "real"),
                          ("relallvisible", int(row["relallvisible"]), "integer")])

    def _restore_columns(self, schema: str, table: str) -> None:
        stats = self.info["stats"]
        mine = stats[(stats["schema_name"] == schema) & (stats["table_name"] == table)] if len(stats) else stats
        if not len(mine):
            self.no_stats.append(f"{schema}.{table}")
            return
        for s in mine.to_dict("records"):
            pairs = [("attname", s["column_name"], "text"), ("inherited", bool(s["inherited"]), "boolean")]
            pairs += [(k, _plain(s[k]), t) for k, t in STAT_KEYS if _present(s[k])]
            self._stats_call("pg_restore_attribute_stats", schema, table, pairs)

    def _stats_call(self, function: str, schema: str, name: str, pairs: list[tuple[str, object, str]]) -> None:
        args = ["'schemaname'::text, %s::text", "'relname'::text, %s::text"]
        values: list = [schema, name]
        for key, value, typ in pairs:
            args.append(f"'{key}'::text, %s::{typ}")
            values.append(value)
        self.conn.execute(f"SELECT pg_catalog.{function}({', '.join(args)})", values)

    def _apply_settings(self) -> None:
        from psycopg.sql import SQL, Identifier, Literal

        for s in self.info["settings"].itertuples():
            unit = s.unit if isinstance(s.unit, str) else ""
            value = f"{int(s.setting) * 8}kB" if unit == "8kB" else f"{s.setting}{unit}"
            self.conn.execute(SQL("ALTER DATABASE {} SET {} = {}").format(Identifier(DBNAME), Identifier(s.name),
                                                                          Literal(value)))


def _cannot_copy(row, cols) -> str | None:
    if not len(cols):
        return "its columns could not be read"
    odd = [c.column_name for c in cols.itertuples() if not c.builtin or c.odd_collation]
    if odd:
        return f"column(s) {', '.join(odd[:5])} of a type or collation not built into PostgreSQL"
    return None


def _present(value) -> bool:
    if value is None:
        return False
    try:
        import math

        return not (isinstance(value, float) and math.isnan(value))
    except TypeError:
        return True


def _plain(value):
    """numpy scalars and arrays as Python values psycopg adapts."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


@contextmanager
def open_shadow(info: dict):
    """Make a throwaway cluster, build the shadow in it, yield it, and always delete the cluster."""
    from ..database.sandbox import throwaway_cluster
    from ..database.session import raw_connect

    t0 = time.perf_counter()
    name = f"tuning-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{int(time.time() * 1000) % 100000:05d}"
    with throwaway_cluster(name, purpose="tuning") as cluster:
        with raw_connect(cluster.conninfo(), read_only=False, statement_timeout_ms=60_000) as admin:
            admin.execute(f"CREATE DATABASE {DBNAME} TEMPLATE template0")
        started = time.perf_counter() - t0
        with raw_connect(cluster.conninfo(dbname=DBNAME), read_only=False, statement_timeout_ms=60_000) as conn:
            shadow = Shadow(cluster, conn, info)
            shadow.timings["cluster_s"] = started
            shadow.build()
            conn.close()
        # a new session reads the database's planner settings
        with raw_connect(cluster.conninfo(dbname=DBNAME), read_only=False, statement_timeout_ms=60_000) as conn:
            conn.execute("SET jit = off")
            shadow.conn = conn
            yield shadow
