"""Capture one snapshot in one read-only transaction: one query per catalog view, never a per-table query."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..database import sql as sqlfiles
from ..database.session import unit_sql
from ..core.errors import OpsbookError

DEFAULT_BUDGET_MS = 10_000  # the whole capture; cron every minute leaves most of the minute free
EXACT_SIZES = 1000  # relations sized exactly per snapshot (most written first); the rest from relpages
HEAVY_EVERY_S = 3600  # storage.objects and auth.users are scanned at most hourly (they can be large tables)
DB_METRICS = ("database_size_bytes", "backends", "xact_commit", "xact_rollback", "deadlocks", "conflicts",
              "temp_files", "temp_bytes", "blks_hit", "blks_read", "tup_inserted", "tup_updated", "tup_deleted",
              "xid_age", "mxid_age", "cluster_xid_age", "wal_lsn_bytes", "max_connections")
CHECKPOINT_METRICS = ("checkpoints_timed", "checkpoints_req", "buffers_checkpoint", "buffers_clean",
                      "maxwritten_clean", "buffers_backend", "buffers_alloc", "checkpoint_write_time_ms",
                      "checkpointer_stats_reset_epoch")

# The metric names each part produces: when a part ran, a series of these names absent from it is gone.
PART_METRICS = {
    "database": set(DB_METRICS),
    "databases": {"cluster_database_size_bytes"},
    "relations": {"relations_bytes", "tables_count", "indexes_count"},
    "connections": {"connections_total", "connections_active", "connections_idle", "connections_idle_in_transaction",
                    "connections_idle_in_transaction_aborted"},
    "checkpoints": set(CHECKPOINT_METRICS),
    "replication_slots": {"slot_retained_wal_bytes"},
    "sequences": {"sequence_pct_used"},
    "statements": {"statements_tracked"},
    "storage": {"storage_objects_bytes", "storage_objects_count", "bucket_objects_bytes", "bucket_objects_count"},
    "auth": {"mau", "auth_users_total"},
}


class SnapshotBudgetExceeded(OpsbookError):
    """The capture took longer than its time budget; nothing was stored."""


@dataclass
class Capture:
    """What one snapshot measured, ready for the store."""

    ts: float
    server_version_num: int
    stats_reset: float | None
    postmaster_start: float | None
    server_ms: float
    metrics: list[dict[str, Any]] = field(default_factory=list)
    relations: list[dict[str, Any]] = field(default_factory=list)
    statements: list[dict[str, Any]] | None = None
    parts: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    query_ms: dict[str, float] = field(default_factory=dict)

    def metric_scope(self) -> set[str]:
        return set().union(*(PART_METRICS.get(p, set()) for p in self.parts))

    def metric(self, name: str, value: Any, label: str = "") -> None:
        if value is None or value != value:
            return
        self.metrics.append({"key": f"{name}|{label}", "name": name, "parent": label, "value": float(value)})


def capture(db, *, as_of: float | None = None, budget_ms: float = DEFAULT_BUDGET_MS, heavy: bool = True,
            known_queryids: set[str] | None = None, exact_sizes: int = EXACT_SIZES) -> Capture:
    """Measure the target behind the read-only Session `db`. `as_of` (epoch seconds) replaces the server's clock
    for the snapshot's timestamp and the MAU window (the demo's simulated clock). `heavy` includes the Supabase
    storage and auth counts. `known_queryids`: statements whose text the store already has. `exact_sizes`: how
    many relations (most written first) get an exact size; the others' sizes come from pg_class.relpages."""
    t0 = time.perf_counter()
    conn = db.conn
    deadline = t0 + budget_ms / 1000

    def run(name: str, sql_text: str | None = None, **params):
        if time.perf_counter() > deadline:
            raise SnapshotBudgetExceeded(f"snapshot over its time budget of {budget_ms:.0f} ms before "
                                         f"{name}; nothing stored (raise --budget-ms or look at what is slow)")
        q0 = time.perf_counter()
        text_ = sql_text if sql_text is not None else sqlfiles.load(name, db.server_version_num)
        df = db.query(text_, _name=name, **params)
        cap.query_ms[name] = (time.perf_counter() - q0) * 1000
        return df

    def optional(part: str, fn) -> None:
        conn.exec_driver_sql("SAVEPOINT opsbook_part")
        try:
            fn()
            conn.exec_driver_sql("RELEASE SAVEPOINT opsbook_part")
            cap.parts.append(part)
        except SnapshotBudgetExceeded:
            raise
        except Exception as e:  # noqa: BLE001 - a missing privilege/extension skips one part, not the snapshot
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT opsbook_part")
            cap.skipped[part] = " ".join(str(getattr(e, "orig", e)).split())[:200]

    cap = Capture(ts=0.0, server_version_num=db.server_version_num, stats_reset=None, postmaster_start=None,
                  server_ms=0.0)
    db.raw.execute(unit_sql(read_only=True, statement_timeout_ms=int(budget_ms), lock_timeout_ms=db.lock_timeout_ms,
                            isolation="REPEATABLE READ"))  # one snapshot of the catalogue for every part
    try:
        d = run("history/database").iloc[0].to_dict()
        cap.ts = float(as_of) if as_of is not None else float(d["server_now_epoch"])
        cap.stats_reset, cap.postmaster_start = _f(d["stats_reset_epoch"]), _f(d["postmaster_start_epoch"])
        for name in DB_METRICS:
            cap.metric(name, d.get(name))
        cap.parts.append("database")
        cap.metric("cluster_database_size_bytes", d.get("database_size_bytes"), d["datname"])
        optional("databases", lambda: [cap.metric("cluster_database_size_bytes", r.size_bytes, r.datname)
                                       for r in run("history/databases").itertuples()])
        optional("relations", lambda: _relations(cap, run("history/relations", exact_sizes=exact_sizes)))
        optional("connections", lambda: _connections(cap, run("connections/by_state")))
        optional("checkpoints", lambda: [cap.metric(k, v) for k, v in run("history/checkpoints").iloc[0].items()])
        optional("replication_slots", lambda: [
            cap.metric("slot_retained_wal_bytes", r.retained_wal_bytes, r.slot_name)
            for r in run("replication/slots").itertuples()])
        optional("sequences", lambda: [cap.metric("sequence_pct_used", r.pct_used, f"{r.schema_name}.{r.sequence_name}")
                                       for r in run("sequences/usage").itertuples()])
        if d.get("pgss_schema"):
            optional("statements", lambda: _statements(cap, run, d["pgss_schema"], known_queryids or set()))
        else:
            cap.skipped["statements"] = "pg_stat_statements is not installed in this database"
        if heavy and d.get("has_storage"):
            optional("storage", lambda: _storage(cap, run("storage/buckets")))
        if heavy and d.get("has_auth"):
            from ..database.supabase import monthly_active_users  # noqa: PLC0415 - the checks' one definition

            optional("auth", lambda: _auth(cap, monthly_active_users(db, as_of=_as_timestamp(cap.ts))))
        cap.server_ms = float(db.scalar("SELECT extract(epoch FROM clock_timestamp() - transaction_timestamp()) "
                                        "* 1000"))
    finally:
        conn.exec_driver_sql("ROLLBACK")  # read-only: nothing to commit; ends the transaction either way
    if time.perf_counter() > deadline:
        raise SnapshotBudgetExceeded(f"snapshot took {(time.perf_counter() - t0) * 1000:.0f} ms, over its budget "
                                     f"of {budget_ms:.0f} ms; nothing stored")
    return cap


def _f(v: Any) -> float | None:
    return None if v is None or v != v else float(v)


def _as_timestamp(epoch: float):
    import datetime as dt  # noqa: PLC0415

    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)


def _relations(cap: Capture, df) -> None:
    from .store import RELATION_COLUMNS  # noqa: PLC0415

    total = 0.0
    for r in df.to_dict("records"):
        row = {"key": f"{r['schema_name']}.{r['name']}", "schema_name": r["schema_name"], "name": r["name"],
               "parent": r["parent"], "_kind": r["kind"], **{c: r.get(c) for c in RELATION_COLUMNS}}
        cap.relations.append(row)
        total += r["size_bytes"] or 0
    cap.metric("relations_bytes", total)
    cap.metric("tables_count", int((df["kind"] == "table").sum()))
    cap.metric("indexes_count", int((df["kind"] == "index").sum()))


def _connections(cap: Capture, df) -> None:
    by_state = df.groupby("state")["connections"].sum()
    cap.metric("connections_total", by_state.sum())
    for state in ("active", "idle", "idle in transaction", "idle in transaction (aborted)"):
        cap.metric("connections_" + state.replace(" (aborted)", "_aborted").replace(" ", "_"),
                   by_state.get(state, 0))


def _statements(cap: Capture, run, schema: str, known: set[str]) -> None:
    pgss = '"' + schema.replace('"', '""') + '"'
    df = run("history/statements", sqlfiles.load("history/statements", cap.server_version_num).replace("{pgss}", pgss))
    new_ids = sorted(set(df["queryid"]) - known)
    texts = {}
    if new_ids:
        t = run("history/statement_texts", sqlfiles.load("history/statement_texts", cap.server_version_num)
                .replace("{pgss}", pgss), queryids=new_ids)
        texts = dict(zip(t["queryid"], t["query"]))
    from .store import STATEMENT_COLUMNS  # noqa: PLC0415

    rows = []
    for r in df.to_dict("records"):
        rows.append({"key": f"{r['queryid']}|{r['role']}|{int(bool(r['toplevel']))}", "name": r["queryid"],
                     "parent": r["role"], "info": texts.get(r["queryid"]),
                     **{c: r.get(c) for c in STATEMENT_COLUMNS}})
    cap.statements = rows
    cap.metric("statements_tracked", len(rows))


def _storage(cap: Capture, df) -> None:
    cap.metric("storage_objects_bytes", df["size_bytes"].sum())
    cap.metric("storage_objects_count", df["objects"].sum())
    for r in df.itertuples():
        cap.metric("bucket_objects_bytes", r.size_bytes, r.bucket_id)
        cap.metric("bucket_objects_count", r.objects, r.bucket_id)


def _auth(cap: Capture, df) -> None:
    cap.metric("mau", df["mau"].iloc[0])
    cap.metric("auth_users_total", df["users_total"].iloc[0])
