"""The activity-sample table of the history store, writing one sample compactly and pruning old ones."""
from __future__ import annotations

import json
import time

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text, delete, select

from ...history.store import PREFIX, metadata, store_schema

# one narrow row per sample; what varies in size (apps, blocking roots) goes into `detail`, bounded by the sampler
samples = Table(
    f"{PREFIX}samples", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("ts", Float, nullable=False),  # epoch seconds (the server's clock when reachable)
    Column("status", String(16), nullable=False),  # ok | unreachable (a gap starts here) | stopped
    Column("server_ms", Float),
    Column("connections", Integer),
    Column("max_connections", Integer),
    Column("active", Integer),
    Column("idle_in_transaction", Integer),
    Column("waiting", Integer),  # sessions waiting on a lock
    Column("blocked_max_tree", Integer),  # sessions behind the biggest blocking root
    Column("longest_xact_s", Float),
    Column("xact_commit", Float),
    Column("xact_rollback", Float),
    Column("deadlocks", Float),
    Column("temp_bytes", Float),
    Column("wal_bytes", Float),
    Column("detail", Text),  # JSON: by_state, by_wait, by_app, roots, longest; or the error of a gap
    Index(f"{PREFIX}samples_target_ts", "target", "ts"),
)
COUNTERS = ("xact_commit", "xact_rollback", "deadlocks", "temp_bytes", "wal_bytes")


def ensure_table(engine) -> None:
    samples.create(engine, checkfirst=True)


def write_sample(engine, row: dict) -> int:
    """Insert one sample row (`detail` a dict, stored as compact JSON); returns its id."""
    values = dict(row)
    if isinstance(values.get("detail"), (dict, list)):
        values["detail"] = json.dumps(values["detail"], separators=(",", ":"), default=str)
    with engine.begin() as conn:
        return conn.execute(samples.insert().values(**values)).inserted_primary_key[0]


def read_samples(engine, target: str, start: float, end: float) -> list[dict]:
    """Sample rows of `target` with start <= ts <= end, oldest first, `detail` decoded."""
    from sqlalchemy import inspect  # noqa: PLC0415

    with engine.connect() as conn:
        if not inspect(conn).has_table(samples.name, schema=store_schema(conn)):
            return []
        rows = conn.execute(select(samples).where(samples.c.target == target, samples.c.ts >= start,
                                                  samples.c.ts <= end).order_by(samples.c.ts)).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        try:
            d["detail"] = json.loads(d["detail"]) if d["detail"] else {}
        except ValueError:
            d["detail"] = {}
        out.append(d)
    return out


def prune_samples(engine, older_than_s: float, *, target: str | None = None, now: float | None = None) -> int:
    """Delete samples older than the cutoff; returns how many. Samples are for post-mortems of recent
    incidents: unlike snapshots no daily copy is kept."""
    from sqlalchemy import inspect  # noqa: PLC0415

    cutoff = (now or time.time()) - older_than_s
    with engine.begin() as conn:
        if not inspect(conn).has_table(samples.name, schema=store_schema(conn)):
            return 0
        q = delete(samples).where(samples.c.ts < cutoff)
        if target:
            q = q.where(samples.c.target == target)
        return conn.execute(q).rowcount or 0
