"""Prune old snapshots: drop those older than a cutoff, optionally keeping the last snapshot of each day."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import and_, delete, select, update

from ..core.errors import UsageError
from . import store as st

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
CHUNK = 500


def parse_duration(text: str) -> float:
    """'90d', '12h', '2w', '3600' (seconds) -> seconds; anything else is a UsageError."""
    m = _DURATION.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"duration {text!r} not understood; use a number with a unit, e.g. 90d, 12h, 2w")
    return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]


@dataclass
class PruneResult:
    snapshots_deleted: int
    snapshots_kept_daily: int
    rows_deleted: int
    rows_moved: int

    def line(self) -> str:
        return (f"pruned {self.snapshots_deleted} snapshot(s) ({self.rows_deleted:,} rows); kept "
                f"{self.snapshots_kept_daily} daily snapshot(s) beyond the cutoff")


def prune(store, older_than_s: float, *, keep_daily: bool = True, target: str | None = None,
          now: float | None = None) -> PruneResult:
    """Delete snapshots older than `older_than_s` (for one target or all). With `keep_daily`, the last snapshot of
    each UTC day beyond the cutoff stays. Values that later snapshots still rely on (stored only when they changed)
    move forward to the next kept snapshot, so every reader sees the same numbers as before."""
    cutoff = (now if now is not None else time.time()) - older_than_s
    result = PruneResult(0, 0, 0, 0)
    for t in ([target] if target else store.targets()):
        _prune_target(store.engine, t, cutoff, keep_daily, result)
    return result


def _prune_target(engine, target: str, cutoff: float, keep_daily: bool, result: PruneResult) -> None:
    s = st.snapshots
    with engine.connect() as conn:
        snaps = pd.read_sql(select(s.c.id, s.c.ts).where(s.c.target == target).order_by(s.c.ts, s.c.id), conn)
    if snaps.empty:
        return
    old = snaps["ts"] < cutoff
    keep = ~old
    if keep_daily:
        day = pd.to_datetime(snaps["ts"], unit="s", utc=True).dt.floor("D")
        daily = old & ~day.duplicated(keep="last")  # snaps are in time order: the day's last one
        keep |= daily
        result.snapshots_kept_daily += int(daily.sum())
    doomed = snaps.loc[~keep, "id"].astype(int).tolist()
    if not doomed:
        return
    # Each doomed snapshot's rows move to the next kept one (by time), unless that one has its own row.
    next_kept: dict[int, int | None] = {}
    pending: list[int] = []
    for sid, kept in zip(snaps["id"].astype(int), keep):
        if kept:
            next_kept.update({p: sid for p in pending})
            pending = []
        else:
            pending.append(sid)
    next_kept.update({p: None for p in pending})
    with engine.begin() as conn:
        for fact in (st.relation_stats, st.statement_stats, st.points):
            moved, deleted = _rebase(conn, fact, doomed, next_kept)
            result.rows_moved += moved
            result.rows_deleted += deleted
        for i in range(0, len(doomed), CHUNK):
            conn.execute(delete(s).where(s.c.id.in_(doomed[i:i + CHUNK])))
    result.snapshots_deleted += len(doomed)


def _rebase(conn, fact, doomed: list[int], next_kept: dict[int, int | None]) -> tuple[int, int]:
    rows = []
    for i in range(0, len(doomed), CHUNK):
        rows += conn.execute(select(fact.c.entity_id, fact.c.snapshot_id)
                             .where(fact.c.snapshot_id.in_(doomed[i:i + CHUNK]))).all()
    if not rows:
        return 0, 0
    df = pd.DataFrame(rows, columns=["entity_id", "snapshot_id"])
    df["dest"] = df["snapshot_id"].map(next_kept)
    movable = df.dropna(subset=["dest"]).astype({"dest": int})
    latest = movable.sort_values("snapshot_id").groupby(["entity_id", "dest"]).tail(1)
    dests = sorted(set(latest["dest"]))
    existing = set()
    for i in range(0, len(dests), CHUNK):
        existing |= set(conn.execute(select(fact.c.entity_id, fact.c.snapshot_id)
                                     .where(fact.c.snapshot_id.in_(dests[i:i + CHUNK]))).all())
    moves = [{"e": int(r.entity_id), "old": int(r.snapshot_id), "new": int(r.dest)}
             for r in latest.itertuples() if (r.entity_id, r.dest) not in existing]
    if moves:
        from sqlalchemy import bindparam  # noqa: PLC0415

        conn.execute(update(fact).where(and_(fact.c.entity_id == bindparam("e"),
                                             fact.c.snapshot_id == bindparam("old")))
                     .values(snapshot_id=bindparam("new")), moves)
    deleted = 0
    for i in range(0, len(doomed), CHUNK):
        deleted += conn.execute(delete(fact).where(fact.c.snapshot_id.in_(doomed[i:i + CHUNK]))).rowcount or 0
    return len(moves), deleted
