"""What each schedule last told people, in the history store: the findings announced per target (so a standing
one is not announced again as new, and its clearing is), and when each notifier last heard (for `repeat_every`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, Text, delete, select

metadata = MetaData()
announced = Table(
    "opsbook_notify_findings", metadata,
    Column("schedule", String(200), primary_key=True),
    Column("target", String(200), primary_key=True),
    Column("check_id", String(200), primary_key=True),
    Column("severity", String(16), nullable=False),
    Column("title", Text),
    Column("since", Float, nullable=False),  # epoch seconds of the run that first announced it at this severity
    Column("last_at", Float, nullable=False),  # of the newest run that found it
)
sent = Table(
    "opsbook_notify_sent", metadata,
    Column("schedule", String(200), primary_key=True),
    Column("notifier", String(200), primary_key=True),
    Column("last_at", Float, nullable=False),  # the last message that reached this notifier for this schedule
)
SERIOUS = ("critical", "warning")  # what a message lists, so what can stand or be resolved


@dataclass
class Changes:
    """One target's findings against what was announced: new (or changed severity), standing, resolved."""

    new: list[dict[str, Any]] = field(default_factory=list)
    standing: list[dict[str, Any]] = field(default_factory=list)  # each with `since` (epoch seconds)
    resolved: list[dict[str, Any]] = field(default_factory=list)  # each with `since` and `severity` as announced


def serious(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """check id -> its worst critical or warning finding (one key per check, as the state keeps them)."""
    rank = {s: i for i, s in enumerate(SERIOUS)}
    out: dict[str, dict[str, Any]] = {}
    for f in findings:
        if not isinstance(f, dict) or f.get("severity") not in rank or not isinstance(f.get("check"), str):
            continue
        old = out.get(f["check"])
        if old is None or rank[f["severity"]] < rank[old["severity"]]:
            out[f["check"]] = f
    return out


class NoticeState:
    """The two tables on the history store's engine (SQLite or PostgreSQL), created if absent."""

    def __init__(self, url: str):
        from ...history.store import create_tables, make_engine  # noqa: PLC0415

        self.engine = make_engine(url)
        create_tables(self.engine, metadata)

    def close(self) -> None:
        self.engine.dispose()

    def compare(self, schedule: str, target: str, findings: list[dict[str, Any]]) -> Changes:
        """Classify a finished run's findings; the store is not changed (see `record`)."""
        now = serious(findings)
        with self.engine.connect() as conn:
            rows = {r["check_id"]: dict(r) for r in conn.execute(
                select(announced).where(announced.c.schedule == schedule, announced.c.target == target)).mappings()}
        out = Changes()
        for check, f in now.items():
            old = rows.get(check)
            if old is not None and old["severity"] == f["severity"]:
                out.standing.append({**f, "since": old["since"]})
            else:
                out.new.append(f)
        for check, old in rows.items():
            if check not in now:
                out.resolved.append({"check": check, "severity": old["severity"], "title": old["title"],
                                     "since": old["since"]})
        return out

    def record(self, schedule: str, target: str, changes: Changes, at: float) -> None:
        """After a message about `changes` reached someone: new findings are announced from `at`, standing ones
        keep their `since`, resolved ones are forgotten."""
        with self.engine.begin() as conn:
            key = (announced.c.schedule == schedule) & (announced.c.target == target)
            for f in changes.resolved + changes.new:
                conn.execute(delete(announced).where(key, announced.c.check_id == f["check"]))
            for f in changes.new:
                conn.execute(announced.insert().values(schedule=schedule, target=target, check_id=f["check"],
                                                       severity=f["severity"], title=str(f.get("title") or "")[:500],
                                                       since=at, last_at=at))
            for f in changes.standing:
                conn.execute(announced.update().where(key, announced.c.check_id == f["check"]).values(last_at=at))

    def last_sent(self, schedule: str, notifier: str) -> float | None:
        with self.engine.connect() as conn:
            return conn.execute(select(sent.c.last_at).where(sent.c.schedule == schedule,
                                                             sent.c.notifier == notifier)).scalar()

    def mark_sent(self, schedule: str, notifier: str, at: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sent).where(sent.c.schedule == schedule, sent.c.notifier == notifier))
            conn.execute(sent.insert().values(schedule=schedule, notifier=notifier, last_at=at))
