"""The record of scheduled runs in the history store: one row per schedule, target and cron slot.

The row is also the lock: inserting it claims the slot (a unique key on schedule, target and slot), and a retry is
claimed by an update that only one invocation can win, so overlapping `schedule run-due` calls, on one machine or
many sharing a store, run each job exactly once.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
job_runs = Table(
    "opsbook_job_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("slot", Float, nullable=False),  # epoch seconds of the cron slot this run is for
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running, ok, retrying, failed, skipped, and the two below
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("next_retry_at", Float),
    Column("owner", String(300)),  # host:pid of the invocation running it
    Column("report", Text),  # the sidecar JSON of the last attempt
    Column("worst", String(16)),
    Column("error", Text),
    UniqueConstraint("schedule", "target", "slot", name="opsbook_job_runs_slot"),
)
# A run still "running" after this long lost its invocation (killed, rebooted): it counts as a failed attempt.
STALE_AFTER_S = 6 * 3600
# The target could not be reached in any attempt (people were told): the job runs once more when it answers again,
# until the schedule's next slot (kept in next_retry_at for `schedule list`; run-due recomputes it).
WAITING_TARGET = "waiting_target"
# Not run yet (attempt 0): a job feeding this one's report (schedule/order.py) is running or retrying on the target.
WAITING_FEED = "waiting_feed"
UNFINISHED = ("running", "retrying", WAITING_FEED)  # what a reader waits for (a down target is not waited for)


@dataclass
class Claim:
    id: int
    schedule: str
    target: str
    slot: float
    attempt: int
    rerun: bool = False  # the run once more after the target answers again (never retried, nor reported twice)


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStore:
    """Job rows on the history store's engine (SQLite or PostgreSQL)."""

    def __init__(self, url: str):
        from ..history.store import create_tables, make_engine  # noqa: PLC0415

        self.engine = make_engine(url)
        create_tables(self.engine, metadata)

    def close(self) -> None:
        self.engine.dispose()

    def claim_slot(self, schedule: str, target: str, slot: float, now: float) -> Claim | None:
        """Insert the slot's row; None when another invocation already has it."""
        try:
            with self.engine.begin() as conn:
                rid = conn.execute(job_runs.insert().values(
                    schedule=schedule, target=target, slot=slot, attempt=1, status="running", started_at=now,
                    owner=owner())).inserted_primary_key[0]
        except IntegrityError:
            return None
        return Claim(rid, schedule, target, slot, 1)

    def seen(self, schedule: str) -> bool:
        """Whether the schedule has any row yet (a slot run, tried, skipped, or a manual run)."""
        with self.engine.connect() as conn:
            return conn.execute(select(job_runs.c.id).where(job_runs.c.schedule == schedule).limit(1)).first() \
                is not None

    def skip_slot(self, schedule: str, targets: list[str], slot: float, now: float, reason: str) -> bool:
        """Mark the slot as not run on every target (status `skipped`, attempt 0), in one transaction: another
        invocation sees all of the rows or none. False when another invocation had the slot first."""
        try:
            with self.engine.begin() as conn:
                for target in targets:
                    conn.execute(job_runs.insert().values(
                        schedule=schedule, target=target, slot=slot, attempt=0, status="skipped", started_at=now,
                        finished_at=now, owner=owner(), error=f"not run: {reason}"))
        except IntegrityError:
            return False
        return True

    def hold_slot(self, schedule: str, target: str, slot: float, now: float, reason: str) -> bool:
        """Claim the slot without running it yet (status waiting_feed, attempt 0); False when another invocation
        has it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(job_runs.insert().values(
                    schedule=schedule, target=target, slot=slot, attempt=0, status=WAITING_FEED, started_at=now,
                    owner=owner(), error=f"waiting: {reason}"))
        except IntegrityError:
            return False
        return True

    def waiting(self, schedule: str) -> list[dict[str, Any]]:
        """The schedule's jobs waiting for their target or for the jobs that feed them."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_runs).where(job_runs.c.schedule == schedule,
                                                       job_runs.c.status.in_((WAITING_TARGET, WAITING_FEED)))
                                .order_by(job_runs.c.slot, job_runs.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def claim_waiting(self, row: dict[str, Any], now: float) -> Claim | None:
        """Run a waiting job now: its first attempt (waiting_feed) or the run once more after its target answered
        again (waiting_target); only one invocation's update matches."""
        with self.engine.begin() as conn:
            n = conn.execute(update(job_runs).where(job_runs.c.id == row["id"], job_runs.c.status == row["status"],
                                                    job_runs.c.attempt == row["attempt"])
                             .values(status="running", attempt=row["attempt"] + 1, started_at=now, next_retry_at=None,
                                     owner=owner())).rowcount
        return Claim(row["id"], row["schedule"], row["target"], row["slot"], row["attempt"] + 1,
                     rerun=row["status"] == WAITING_TARGET) if n == 1 else None

    def unfinished(self, schedules: list[str], target: str, upto_slot: float) -> list[dict[str, Any]]:
        """Jobs of `schedules` on `target` for a slot at or before `upto_slot` still running, retrying or held."""
        if not schedules:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_runs).where(job_runs.c.schedule.in_(schedules),
                                                       job_runs.c.target == target,
                                                       job_runs.c.slot <= upto_slot,
                                                       job_runs.c.status.in_(UNFINISHED))
                                .order_by(job_runs.c.slot, job_runs.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def due_retries(self, schedule: str, now: float) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_runs).where(job_runs.c.schedule == schedule,
                                                       job_runs.c.status == "retrying",
                                                       job_runs.c.next_retry_at <= now)).mappings().all()
        return [dict(r) for r in rows]

    def claim_retry(self, row: dict[str, Any], now: float) -> Claim | None:
        """Take a retry whose time has come; only one invocation's update matches."""
        with self.engine.begin() as conn:
            n = conn.execute(update(job_runs).where(job_runs.c.id == row["id"], job_runs.c.status == "retrying",
                                                    job_runs.c.attempt == row["attempt"])
                             .values(status="running", attempt=row["attempt"] + 1, started_at=now,
                                     owner=owner())).rowcount
        return Claim(row["id"], row["schedule"], row["target"], row["slot"], row["attempt"] + 1) if n == 1 else None

    def refuse_retry(self, row: dict[str, Any], reason: str, now: float) -> bool:
        """Close a retry or a waiting job that must not run (`reason` recorded as its error); False when another
        invocation took or closed it first."""
        return self.close_row(row, f"not run: {reason}", now)

    def close_row(self, row: dict[str, Any], error: str, now: float) -> bool:
        """Mark a retrying or waiting row failed with `error`, unless another invocation changed it first."""
        with self.engine.begin() as conn:
            n = conn.execute(update(job_runs).where(job_runs.c.id == row["id"], job_runs.c.status == row["status"],
                                                    job_runs.c.attempt == row["attempt"])
                             .values(status="failed", finished_at=now, next_retry_at=None, error=error)).rowcount
        return n == 1

    def reclaim_stale(self, now: float) -> int:
        """Runs whose invocation died mid-run become retries (they never finished, so nobody was told)."""
        with self.engine.begin() as conn:
            return conn.execute(update(job_runs).where(job_runs.c.status == "running",
                                                       job_runs.c.started_at < now - STALE_AFTER_S)
                                .values(status="retrying", next_retry_at=now,
                                        error="the invocation running it never finished (killed?)")).rowcount

    def finish(self, claim: Claim, *, status: str, now: float, report: str | None = None, worst: str | None = None,
               error: str | None = None, next_retry_at: float | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(job_runs).where(job_runs.c.id == claim.id).values(
                status=status, finished_at=now, report=report, worst=worst, error=error,
                next_retry_at=next_retry_at))

    def last_runs(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(schedule, target) -> its newest row."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(job_runs).order_by(job_runs.c.slot, job_runs.c.id)).mappings():
                out[(r["schedule"], r["target"])] = dict(r)
        return out

    def rows(self, schedule: str | None = None) -> list[dict[str, Any]]:
        q = select(job_runs).order_by(job_runs.c.slot, job_runs.c.id)
        if schedule:
            q = q.where(job_runs.c.schedule == schedule)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]
