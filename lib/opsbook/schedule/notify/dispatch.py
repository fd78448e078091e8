"""Who hears what after a schedule's jobs finish: one digest per schedule and slot (a retry that ends later is told
on its own), findings compared with what was announced before (standing ones are not news, cleared ones are), and
a message about standing findings only at most every `repeat_every`."""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .digest import Digest
from .message import Message
from .send import send_one
from .spec import load_notifiers
from .state import NoticeState

RANK = {"critical": 3, "warning": 2, "info": 1, "ok": 0}
# While a schedule's claims run together, each finished attempt's outcome is handed here instead of being told at
# once (`hold`); the digest of the slot is sent when all of them are back (`announce_claims`).
_HELD: contextvars.ContextVar[list | None] = contextvars.ContextVar("opsbook_notify_held", default=None)


def held_contexts(n: int) -> tuple[list, list[contextvars.Context]]:
    """A list that collects finished outcomes, and `n` contexts (one per attempt, each run in a worker thread)
    in which `hold` hands outcomes to it."""
    held: list = []
    token = _HELD.set(held)
    try:
        return held, [contextvars.copy_context() for _ in range(n)]
    finally:
        _HELD.reset(token)


def hold(outcome) -> bool:
    """Keep `outcome` for the slot's digest when the attempt runs among others (True), else False: tell it now."""
    held = _HELD.get()
    if held is None:
        return False
    held.append(outcome)
    return True


def announce_claims(config, s, outcomes: list, held: list, *, clock: float | None = None) -> list[tuple[Any, list]]:
    """The messages of one `run-due` pass of schedule `s`: first attempts as one digest per slot (targets still
    being retried listed as such), later attempts one message each. Returns (outcome, records) to record."""
    told = {id(o) for o in held}
    firsts: dict[float, list] = {}
    later = []
    for o in outcomes:
        if o.attempt == 1:
            firsts.setdefault(o.slot.timestamp(), []).append(o)
        elif id(o) in told:
            later.append(o)
    out = []
    for group in firsts.values():
        done = [o for o in group if id(o) in told]
        if done:
            pending = [o for o in group if o.status == "retrying"]
            records = announce(config, s, done, pending, clock=clock)
            out += [(o, records) for o in done]
    for o in later:
        out.append((o, announce(config, s, [o], [], clock=clock)))
    return out


def announce(config, s, finished: list, pending: list = (), *, clock: float | None = None) -> list[dict[str, Any]]:
    """Tell `s.notify` about `finished` outcomes (JobOutcome) as one message; returns the delivery records."""
    notifiers = load_notifiers(config)
    at = clock if clock is not None else time.time()
    state = NoticeState(config.history_url)
    try:
        rows, changes = [], []
        for o in finished:
            msg, change = _message(config, s, o, state)
            rows.append(msg)
            changes.append((o, change))
        notice = rows[0] if len(rows) == 1 and not pending else Digest(
            s.name, s.runbook, rows, [{"target": p.target, "attempt": p.attempt, "max_attempts": s.max_attempts,
                                        "error": p.error} for p in pending])
        news = _news(rows, s.fail_on)
        standing = any(r.event == "critical" and not r.news for r in rows)
        results, tried = [], False
        for name in s.notify:
            n = notifiers[name]
            if n.wants(news):
                pass
            elif standing and "critical" in n.on and _reminder_due(state, s.name, n, at):
                pass
            else:
                continue
            tried = True
            r = send_one(config, n, notice)
            results.append(r)
            if r["ok"]:
                state.mark_sent(s.name, n.name, at)
        if not tried or any(r["ok"] for r in results):  # else everyone missed it: it is news next time again
            for o, change in changes:
                if change is not None:
                    state.record(s.name, o.target, change, o.slot.timestamp())
        return results
    finally:
        state.close()


def _message(config, s, o, state: NoticeState):
    sidecar = _read(o.report)
    events = {"failed"} if o.status == "failed" else {"done"} | (
        {"critical"} if RANK.get(o.worst or "ok", 0) >= RANK[s.fail_on] else set())
    msg = Message.from_run(config, schedule=s.name, runbook=s.runbook, target=o.target, status=o.status,
                           events=events, sidecar=sidecar, report=o.report, error=o.error, attempt=o.attempt)
    tz = ZoneInfo(s.timezone)
    msg.slot = f"{o.slot.astimezone(tz):%Y-%m-%d %H:%M} {s.timezone}"
    if o.status != "ok" or sidecar is None:
        return msg, None  # what a failed run did not see is not resolved
    change = state.compare(s.name, o.target, sidecar.get("findings") or [])
    day = lambda t: f"{dt.datetime.fromtimestamp(t, tz):%Y-%m-%d}"  # noqa: E731
    msg.classified = True
    msg.standing = {f["check"]: day(f["since"]) for f in change.standing}
    msg.resolved = [{"check": f["check"], "severity": f["severity"], "title": f["title"], "since": day(f["since"])}
                    for f in change.resolved]
    msg.news = any(RANK[f["severity"]] >= RANK[s.fail_on] for f in change.new)
    return msg, change


def _news(rows: list[Message], fail_on: str) -> set[str]:
    """The events worth a message whatever was said before: a failure, a report, something new or cleared at or
    above fail_on."""
    out = set()
    for r in rows:
        if r.event == "failed":
            out.add("failed")
            continue
        out.add("done")
        if (r.event == "critical" and r.news) or any(RANK.get(f["severity"], 0) >= RANK[fail_on] for f in r.resolved):
            out.add("critical")
    return out


def _reminder_due(state: NoticeState, schedule: str, n, at: float) -> bool:
    if n.repeat_every_s is None:
        return False
    last = state.last_sent(schedule, n.name)
    return last is None or at - last >= n.repeat_every_s


def _read(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
