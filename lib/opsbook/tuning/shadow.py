"""The shadow: a throwaway cluster holding the target's tables (columns, simple indexes, sizes) and optimizer
statistics, without one row of data and without any code of the database's users: no function, operator, type,
view, policy, default or trigger is copied, so nothing a statement names can run there but PostgreSQL's own."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import sizes

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
    timings: dict[str, float] = field(default_factory=dict)
    search_path: str = "public"

    def explain(self, text: str) -> dict:
        """The generic plan of `text` here, as the JSON plan's top node (raises the server's error)."""
        import json

        with self.conn.transaction():
            self.conn.execute(f"SET LOCAL search_path = {self.search_path}")
            self.conn.execute(f"SET LOCAL statement_timeout = {SHADOW_TIMEOUT_MS}")
            row = self.conn.execute("EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) " + text).fetchone()[0]
        plan = row if isinstance(row, list) else json.loads(row)
        return plan[0]["Plan"]

    @contextmanager
    def with_index(self, schema: str, table: str, columns: list[str], name: str = "opsbook_candidate",
                   keep: bool = False, null_column: str | None = None):
        """An index on (schema.table, columns) for the length of the block (`keep`: and after it), sized as it
        would be on the target; `null_column`: partial, on the rows where that column IS NULL."""
        cols = ", ".join(ident(c) for c in columns)
        where = f" WHERE {ident(null_column)} IS NULL" if null_column else ""
        self.conn.execute(f"CREATE INDEX {ident(name)} ON {qualified(schema, table)} ({cols}){where}")
        try:
            row = self._table_row(schema, table)
            self._restore_relation(schema, table, row)  # CREATE INDEX counted 0 rows in the empty heap
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
            yield name, pages
        except BaseException:
            keep = False
            raise
        finally:
            if not keep:
                self.conn.execute(f"DROP INDEX IF EXISTS {qualified(schema, name)}")
                self._restore_relation(schema, table, self._table_row(schema, table))

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
        for row in tables.itertuples():
            key = (row.schema_name, row.table_name)
            cols = columns[columns["oid"] == row.oid]
            why = _cannot_copy(row, cols)
            if why:
                self.not_copied[key] = why
                continue
            if row.schema_name not in schemas:
                self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(row.schema_name)}")
                schemas.add(row.schema_name)
            body = ", ".join(f"{ident(c.column_name)} {c.type_sql}" + (" NOT NULL" if c.not_null else "")
                             for c in cols.itertuples())
            self.conn.execute(f"CREATE TABLE {qualified(*key)} ({body}) WITH (autovacuum_enabled = off)")
            self.copied.append(key)
        self._copy_indexes()
        for schema, table in self.copied:  # after the indexes: CREATE INDEX resets the heap's counts
            row = self._table_row(schema, table)
            self._size(qualified(schema, table), row["pages_now"])
            self._restore_relation(schema, table, row)
            self._restore_columns(schema, table)
        self._apply_settings()
        self.search_path = ", ".join(ident(s) for s in (["public"] + sorted(schemas - {"public"})))
        self.timings["build_s"] = time.perf_counter() - t0
        return self

    def _copy_indexes(self) -> None:
        indexes = self.info["indexes"]
        tables = self.info["tables"]
        copied = {(r.schema_name, r.table_name): r.oid for r in tables.itertuples()
                  if (r.schema_name, r.table_name) in self.copied}
        by_oid = {oid: key for key, oid in copied.items()}
        for ix in indexes.itertuples():
            key = by_oid.get(ix.oid)
            if key is None:
                continue
            if not ix.simple:
                self.indexes_skipped.append(f"{key[0]}.{ix.index_name}")
                continue
            self.conn.execute(ix.definition)  # pg_get_indexdef: schema-qualified, built-in opclasses only
            self._size(qualified(key[0], ix.index_name), ix.pages_now)
            self._stats_call("pg_restore_relation_stats", key[0], ix.index_name,
                             [("relpages", int(ix.relpages), "integer"), ("reltuples", float(ix.reltuples), "real")])

    def _table_row(self, schema: str, table: str):
        t = self.info["tables"]
        return t[(t["schema_name"] == schema) & (t["table_name"] == table)].iloc[0]

    def _size(self, regclass: str, pages: int) -> None:
        path = self.conn.execute("SELECT pg_relation_filepath(%s::regclass)", (regclass,)).fetchone()[0]
        sizes.set_pages(self.cluster.data_dir, path, int(pages))

    def _restore_relation(self, schema: str, table: str, row) -> None:
        self._stats_call("pg_restore_relation_stats", schema, table,
                         [("relpages", int(row["relpages"]), "integer"), ("reltuples", float(row["reltuples"]), "real"),
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
    if row.relkind == "p":
        return "a partitioned table (the shadow holds plain tables only)"
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
