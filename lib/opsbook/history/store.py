"""The snapshot store: SQLAlchemy schema, migrations, and writing one snapshot compactly.

Layout (all tables prefixed `opsbook_` so a shared PostgreSQL database can hold them beside anything else):
- `opsbook_snapshots`: one row per snapshot: target, timestamp, simulated or not, resets, cost.
- `opsbook_entities`: what is measured, once: a table, an index, a statement (with its normalised text, keyed
  by queryid), a metric series (name and label). Each remembers a hash of its last stored values.
- `opsbook_relation_stats`, `opsbook_statement_stats`, `opsbook_points`: narrow fact rows, written only when
  the entity's values changed since its last stored row (idle tables and statements cost nothing). Readers
  carry the last row forward. A row with every value NULL marks an entity that disappeared (a dropped table).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import (Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        create_engine, event, func, inspect, select, text)

from ..core.redact import redact_sql

SCHEMA_VERSION = 2
PREFIX = "opsbook_"
GONE = "gone"

metadata = MetaData()

schema_version = Table(f"{PREFIX}schema_version", metadata, Column("version", Integer, nullable=False))

snapshots = Table(
    f"{PREFIX}snapshots", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("ts", Float, nullable=False),  # epoch seconds of the moment measured (the simulated clock in a replay)
    Column("captured_at", Float, nullable=False),  # wall-clock epoch seconds when it was taken
    Column("simulated", Boolean, nullable=False, default=False),
    Column("server_version_num", Integer),
    Column("stats_reset", Float),  # pg_stat_database.stats_reset, epoch seconds
    Column("postmaster_start", Float),
    Column("server_ms", Float),  # server time of the capture transaction
    Column("client_ms", Float),  # wall time of capture + store
    Column("rows_written", Integer),
    Column("parts", String(200)),  # what was captured: db,relations,statements,...
    Column("note", Text),
    Index(f"{PREFIX}snapshots_target_ts", "target", "ts"),
)

entities = Table(
    f"{PREFIX}entities", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # table, index, statement, metric
    Column("key", String(1000), nullable=False),
    Column("schema_name", String(200)),
    Column("name", String(400)),  # relation name, queryid, metric name
    Column("parent", String(400)),  # an index's table, a statement's role, a metric's label
    Column("info", Text),  # a statement's normalised text
    Column("last_hash", String(32)),
    UniqueConstraint("target", "kind", "key", name=f"{PREFIX}entities_key"),
)

RELATION_COLUMNS = ("size_bytes", "rows_est", "seq_scan", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_del",
                    "n_live_tup", "n_dead_tup", "n_mod_since_analyze", "last_vacuum_epoch", "last_autovacuum_epoch",
                    "last_analyze_epoch", "last_autoanalyze_epoch", "autovacuum_count")
STATEMENT_COLUMNS = ("calls", "total_exec_time_ms", "total_plan_time_ms", "rows", "shared_blks_hit",
                     "shared_blks_read", "temp_blks_written", "wal_bytes")
POINT_COLUMNS = ("value",)


def _fact(name: str, columns: Iterable[str]) -> Table:
    return Table(f"{PREFIX}{name}", metadata,
                 Column("entity_id", Integer, primary_key=True),
                 Column("snapshot_id", Integer, primary_key=True),
                 *[Column(c, Float) for c in columns],
                 Index(f"{PREFIX}{name}_snapshot", "snapshot_id"),
                 sqlite_with_rowid=False)


relation_stats = _fact("relation_stats", RELATION_COLUMNS)
statement_stats = _fact("statement_stats", STATEMENT_COLUMNS)
points = _fact("points", POINT_COLUMNS)
FACTS = {"table": relation_stats, "index": relation_stats, "statement": statement_stats, "metric": points}


BUSY_TIMEOUT_MS = 10_000  # how long one SQLite statement waits for another process's write lock


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")  # first: the next pragma may wait for a lock
    cur.execute("PRAGMA journal_mode=WAL")  # a reader (a runbook) never blocks the cron writer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def sqlite_path(url: str) -> str | None:
    """The file of an SQLite URL (None for other databases and for :memory:)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
    return path if path and path != ":memory:" else None


def make_engine(url: str):
    """An engine for the store. A new SQLite store is created private: the file 0600 (its -wal and -shm files
    follow the file's mode), in a folder made 0700 when opsbook creates it; an existing folder is left as is."""
    path = sqlite_path(url)
    if path:
        _create_private(path)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("sqlite"):
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        # opsbook's own tables live in public, named there; everything else resolves in pg_catalog only, so no
        # function another user of that database plants runs as the store's role (see opsbook.database.session.SEARCH_PATH)
        engine = create_engine(url, pool_pre_ping=True,
                               connect_args={"options": "-c search_path=pg_catalog,pg_temp", "prepare_threshold": None})
        return engine.execution_options(schema_translate_map={None: STORE_SCHEMA})
    return create_engine(url, pool_pre_ping=True)


STORE_SCHEMA = "public"  # on PostgreSQL


def store_schema(conn) -> str | None:
    """The schema the store's tables are in, for the inspector (its default would be the pinned pg_catalog)."""
    return STORE_SCHEMA if conn.dialect.name == "postgresql" else None


def _create_private(path: str) -> None:
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    p = Path(path)
    if p.exists():
        return
    missing = [d for d in [p.parent, *p.parent.parents] if not d.exists()]
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)
    try:  # an empty file is a valid new SQLite database; O_EXCL: never change a file someone else just made
        os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def _redact_stored_texts(conn) -> None:
    """Version 2: statement texts stored before redaction lose their password literals (issue 9.4)."""
    from ..core.redact import redact_sql  # noqa: PLC0415

    rows = conn.execute(select(entities.c.id, entities.c.info).where(entities.c.info.is_not(None))).all()
    changed = [{"b_id": r.id, "b_info": redact_sql(r.info)} for r in rows if redact_sql(r.info) != r.info]
    if changed:
        from sqlalchemy import bindparam  # noqa: PLC0415

        conn.execute(entities.update().where(entities.c.id == bindparam("b_id")).values(info=bindparam("b_info")),
                     changed)


# Migrations: version -> function(conn) that brings the schema from version-1 to version. Version 1 is
# create_all itself; later versions append here (add a column, an index) and bump SCHEMA_VERSION.
MIGRATIONS: dict[int, Any] = {2: _redact_stored_texts}


# Two processes that open a fresh shared store at once (fleet workers, overlapping `schedule run-due`) would both
# find no table and both CREATE it; on PostgreSQL one waits for the other on this transaction-scoped advisory lock.
# (SQLite takes its database-wide write lock for the DDL itself.)
SCHEMA_LOCK_KEY = 0x0B5B_0C40


def schema_lock(conn) -> None:
    """Hold the schema lock until the end of `conn`'s transaction (PostgreSQL; a no-op elsewhere)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})


def create_tables(engine, tables_metadata) -> None:
    """CREATE the tables of `tables_metadata` that are absent (another store's beside the history: the scheduler's
    jobs, the notifiers' state), under the schema lock; tried five times: on SQLite a writer may hold the database
    past the busy timeout, on PostgreSQL a racing create may still collide."""
    import time  # noqa: PLC0415

    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError  # noqa: PLC0415

    for attempt in range(5):
        try:
            with engine.begin() as conn:
                schema_lock(conn)
                tables_metadata.create_all(conn, checkfirst=True)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def migrate(engine) -> int:
    """Create the schema if absent and apply pending migrations; returns the schema version now in force."""
    with engine.begin() as conn:
        schema_lock(conn)
        existing = set(inspect(conn).get_table_names(schema=store_schema(conn)))
        metadata.create_all(conn)
        current = conn.execute(select(func.max(schema_version.c.version))).scalar()
        if current is None:
            current = SCHEMA_VERSION if snapshots.name not in existing else 1
            conn.execute(schema_version.insert().values(version=current))
        if current > SCHEMA_VERSION:
            from ..core.errors import ConfigError  # noqa: PLC0415

            raise ConfigError(f"the history store has schema version {current}, newer than this opsbook "
                              f"({SCHEMA_VERSION}); upgrade opsbook")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
            conn.execute(schema_version.update().values(version=version))
        return max(current, SCHEMA_VERSION)


def value_hash(values: Iterable[Any]) -> str:
    parts = []
    for v in values:
        parts.append("" if v is None or v != v else repr(float(v)))
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


@dataclass
class WriteStats:
    snapshot_id: int
    rows_written: int


def write_snapshot(engine, meta: dict[str, Any], groups: dict[str, list[dict[str, Any]] | None],
                   metric_scope: set[str] | None = None) -> WriteStats:
    """Store one snapshot: `meta` for the snapshots row; `groups` maps an entity kind to its rows, each with
    `key`, descriptive fields (schema_name, name, parent, info) and the kind's value columns (None: not captured
    this time). Only entities whose values changed since their last stored row get a fact row; entities gone
    since get a tombstone. A metric counts as gone only when its name is in `metric_scope` (its part ran)."""
    target = meta["target"]
    written = 0
    with engine.begin() as conn:
        sid = conn.execute(snapshots.insert().values(**meta)).inserted_primary_key[0]
        known = {}
        for row in conn.execute(select(entities.c.id, entities.c.kind, entities.c.key, entities.c.last_hash)
                                .where(entities.c.target == target)):
            known[(row.kind, row.key)] = (row.id, row.last_hash)
        for kind, rows in groups.items():
            if rows is None:  # this part was not captured: leave its entities as they are
                continue
            written += _write_kind(conn, sid, target, kind, rows, known, metric_scope)
        conn.execute(snapshots.update().where(snapshots.c.id == sid).values(rows_written=written))
    return WriteStats(sid, written)


def _write_kind(conn, sid: int, target: str, kind: str, rows: list[dict[str, Any]],
                known: dict[tuple[str, str], tuple[int, str]], metric_scope: set[str] | None = None) -> int:
    fact = FACTS[kind]
    cols = [c.name for c in fact.columns if c.name not in ("entity_id", "snapshot_id")]
    new, changed, seen = [], [], set()
    for r in rows:
        key = r["key"]
        seen.add(key)
        h = value_hash(r.get(c) for c in cols)
        if (kind, key) not in known:
            new.append({"target": target, "kind": kind, "key": key, "schema_name": r.get("schema_name"),
                        "name": r.get("name"), "parent": r.get("parent"), "info": redact_sql(r.get("info")),
                        "last_hash": h})
        elif known[(kind, key)][1] != h:
            changed.append((known[(kind, key)][0], h, r))
    facts, hashes = [], []
    if new:
        conn.execute(entities.insert(), new)
        keys = {n["key"] for n in new}
        by_key = {r["key"]: r for r in rows if r["key"] in keys}
        for row in conn.execute(select(entities.c.id, entities.c.key).where(
                entities.c.target == target, entities.c.kind == kind)):
            if row.key in keys:
                facts.append({"entity_id": row.id, "snapshot_id": sid, **{c: _num(by_key[row.key].get(c))
                                                                           for c in cols}})
    for eid, h, r in changed:
        facts.append({"entity_id": eid, "snapshot_id": sid, **{c: _num(r.get(c)) for c in cols}})
        hashes.append({"b_id": eid, "b_hash": h})
    for (k, key), (eid, h) in known.items():
        if k == kind and key not in seen and h != GONE and (
                kind != "metric" or metric_scope is None or key.split("|", 1)[0] in metric_scope):
            facts.append({"entity_id": eid, "snapshot_id": sid, **{c: None for c in cols}})
            hashes.append({"b_id": eid, "b_hash": GONE})
    if hashes:
        from sqlalchemy import bindparam  # noqa: PLC0415

        conn.execute(entities.update().where(entities.c.id == bindparam("b_id"))
                     .values(last_hash=bindparam("b_hash")), hashes)
    if facts:
        conn.execute(fact.insert(), facts)
    return len(facts)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def store_bytes(engine) -> int | None:
    """Bytes the store occupies now: the SQLite file (+WAL), or the opsbook_ tables' total size on PostgreSQL."""
    url = str(engine.url)
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar()
            size = conn.exec_driver_sql("PRAGMA page_size").scalar()
            return int((pages - free) * size)
        if engine.dialect.name == "postgresql":
            return int(conn.execute(text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relkind = 'r' AND c.relname LIKE 'opsbook\\_%' AND c.relnamespace = 'public'::regnamespace"))
                       .scalar())
    return None


def now() -> float:
    return time.time()
