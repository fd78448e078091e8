"""Snapshot history: capture, store (any SQLAlchemy URL), read trends and forecast them, prune; `open_store(config)`
to start."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HistoryStore", "open_store", "take_snapshot", "SnapshotResult", "HOW_TO_START"]

HOW_TO_START = ("run `opsbook snapshot --target {target}` from cron (every 5 minutes is plenty; e.g. "
                "`*/5 * * * * opsbook --config /path/opsbook.toml snapshot --all`); trends and forecasts appear "
                "once two snapshots a day apart exist")


RETRIES = 3  # attempts at a write that meets a locked SQLite store, each waiting store.BUSY_TIMEOUT_MS
RETRY_PAUSE_S = 0.5


def open_store(config, *, create: bool = True) -> HistoryStore | None:
    """The history store named by the configuration's [history] url (SQLite by default). With `create=False`
    (a report looking for history) a store that does not exist yet is not created: the answer is None.
    A store that cannot be opened (locked, full, unwritable) is a StoreError of one line."""
    from .readers import HistoryStore  # noqa: PLC0415 - pandas and SQLAlchemy only when history is used

    if not create and not store_exists(config.history_url):
        return None
    return with_retries(lambda: HistoryStore(config.history_url), config.history_url, "open")


def with_retries(action, url: str, doing: str):
    """`action()`, again after a pause while the SQLite store is locked by another process (each attempt already
    waits the busy timeout); every store failure ends as one StoreError line that names the store, no password."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError  # noqa: PLC0415

    from ..core.errors import StoreError  # noqa: PLC0415
    from . import store as st  # noqa: PLC0415

    where = st.sqlite_path(url) or _shown_url(url)
    for attempt in range(1, RETRIES + 1):
        try:
            return action()
        except OperationalError as e:
            text = " ".join(str(e.orig).split())
            if "already exists" in text and attempt < RETRIES:  # another process created the schema meanwhile
                continue
            if ("locked" in text or "busy" in text) and attempt < RETRIES:
                time.sleep(RETRY_PAUSE_S * attempt)
                continue
            if "locked" in text or "busy" in text:
                waited = RETRIES * st.BUSY_TIMEOUT_MS / 1000
                raise StoreError(f"history store {where} is locked by another process (waited {waited:g} s over "
                                 f"{RETRIES} attempts); try again when it is done") from None
            raise StoreError(f"history store {where}: cannot {doing} it: {text[:200]}") from None
        except SQLAlchemyError as e:
            raise StoreError(f"history store {where}: cannot {doing} it: {type(e).__name__}: "
                             f"{' '.join(str(getattr(e, 'orig', e)).split())[:200]}") from None
        except OSError as e:
            raise StoreError(f"history store {where}: cannot {doing} it: {e.strerror or type(e).__name__}") \
                from None
    raise AssertionError("unreachable")  # pragma: no cover


def _shown_url(url: str) -> str:
    from ..config.file import redact  # noqa: PLC0415

    return redact(url) if "password" in url.lower() else url.split("?", 1)[0]


def __getattr__(name: str):
    if name == "HistoryStore":
        from .readers import HistoryStore  # noqa: PLC0415

        return HistoryStore
    raise AttributeError(name)


def store_exists(url: str) -> bool:
    """Whether the store at `url` holds opsbook's tables, without creating anything."""
    from pathlib import Path  # noqa: PLC0415

    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if not path or path == ":memory:" or not Path(path).exists():
            return False
    from sqlalchemy import create_engine, inspect  # noqa: PLC0415

    from .store import make_engine, snapshots, store_schema  # noqa: PLC0415

    engine = make_engine(url) if url.startswith("postgresql") else create_engine(url)  # creates no file
    try:
        with engine.connect() as conn:
            return inspect(conn).has_table(snapshots.name, schema=store_schema(conn))
    except Exception:  # noqa: BLE001 - unreachable or unreadable: there is no history to read
        return False
    finally:
        engine.dispose()


@dataclass
class SnapshotResult:
    target: str
    snapshot_id: int
    ts: float
    server_ms: float
    client_ms: float
    rows_written: int
    stored_bytes: int | None  # growth of the store from this snapshot
    parts: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    query_ms: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        stored = "" if self.stored_bytes is None else f", {self.stored_bytes:,} bytes stored"
        skipped = f"; skipped: {', '.join(sorted(self.skipped))}" if self.skipped else ""
        return (f"{self.target}: snapshot {self.snapshot_id}, {self.server_ms:,.0f} ms server time, "
                f"{self.rows_written:,} rows{stored}{skipped}")


def take_snapshot(config, target: str, *, store: HistoryStore | None = None, db=None, as_of: float | None = None,
                  simulated: bool = False, budget_ms: float | None = None, heavy: bool | None = None,
                  note: str | None = None) -> SnapshotResult:
    """Capture one snapshot of `target` (read-only) and store it. `db`: an open Session to reuse;
    `as_of`/`simulated`: the demo replay's clock; `heavy`: force the storage/auth counts on or off (default:
    when the last ones are older than an hour)."""
    from . import snapshot as snap  # noqa: PLC0415
    from . import store as st  # noqa: PLC0415

    t0 = time.perf_counter()
    own_store = store is None
    store = store or open_store(config)
    own_db = db is None
    try:
        if db is None:
            from ..database.session import connect  # noqa: PLC0415

            db = connect(config.target(target), lock_timeout_ms=500)
        if heavy is None:
            heavy = with_retries(lambda: _heavy_due(store, target, snap.HEAVY_EVERY_S), store.url, "read")
        known = with_retries(lambda: _known_queryids(store, target), store.url, "read")
        cap = snap.capture(db, as_of=as_of, budget_ms=budget_ms or snap.DEFAULT_BUDGET_MS, heavy=heavy,
                           known_queryids=known)
        before = store.stored_bytes()
        meta = {"target": target, "ts": cap.ts, "captured_at": time.time(), "simulated": simulated,
                "server_version_num": cap.server_version_num, "stats_reset": cap.stats_reset,
                "postmaster_start": cap.postmaster_start, "server_ms": cap.server_ms,
                "parts": ",".join(cap.parts), "note": note}
        groups = {"metric": cap.metrics, "statement": cap.statements,
                  "table": [r for r in cap.relations if r["_kind"] == "table"] if "relations" in cap.parts else None,
                  "index": [r for r in cap.relations if r["_kind"] == "index"] if "relations" in cap.parts else None}
        written = with_retries(lambda: st.write_snapshot(store.engine, meta, groups, cap.metric_scope()),
                               store.url, "write to")
        client_ms = (time.perf_counter() - t0) * 1000

        def stamp() -> None:
            with store.engine.begin() as conn:
                conn.execute(st.snapshots.update().where(st.snapshots.c.id == written.snapshot_id)
                             .values(client_ms=client_ms))

        with_retries(stamp, store.url, "write to")
        after = store.stored_bytes()
        grown = None if before is None or after is None else max(after - before, 0)
        return SnapshotResult(target, written.snapshot_id, cap.ts, cap.server_ms, client_ms, written.rows_written,
                              grown, cap.parts, cap.skipped, cap.query_ms)
    finally:
        if own_db and db is not None:
            db.close()
        if own_store:
            store.close()


def _heavy_due(store: HistoryStore, target: str, every_s: float) -> bool:
    from sqlalchemy import func, select  # noqa: PLC0415

    from .store import snapshots  # noqa: PLC0415

    with store.engine.connect() as conn:
        last = conn.execute(select(func.max(snapshots.c.captured_at)).where(
            snapshots.c.target == target, snapshots.c.parts.like("%auth%") | snapshots.c.parts.like("%storage%")))\
            .scalar()
    return last is None or time.time() - last >= every_s


def _known_queryids(store: HistoryStore, target: str) -> set[str]:
    from sqlalchemy import select  # noqa: PLC0415

    from .store import entities  # noqa: PLC0415

    with store.engine.connect() as conn:
        return {r[0] for r in conn.execute(select(entities.c.name).where(
            entities.c.target == target, entities.c.kind == "statement", entities.c.info.is_not(None)))}
