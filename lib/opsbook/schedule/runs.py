"""`schedule run-due` and `schedule run NAME`: claim due slots, run them, retry failures, tell people."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from ..core.errors import UsageError
from . import order
from .jobs import WAITING_FEED, WAITING_TARGET, Claim, JobStore
from .reach import Probe, unreachable
from .spec import Schedule, load_schedules

SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1, "ok": 0}
# The timer calls run-due every minute: a slot less than this old is the one it was called for, not a missed one.
TICK_S = 60


@dataclass
class JobOutcome:
    """One attempt of one job: what ran, how it ended, what was sent."""

    schedule: str
    target: str
    slot: dt.datetime
    attempt: int
    status: str  # ok, retrying, failed
    report: str | None = None
    worst: str | None = None
    error: str | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    timezone: str = "UTC"  # the schedule's: the slot is shown on its clock
    note: str | None = None  # what happens next (waiting for the target) or what this run was (the run once more)

    def line(self) -> str:
        where = f" -> {self.report}" if self.report else ""
        why = f": {self.error}" if self.error else ""
        why += f"; {self.note}" if self.note else ""
        worst = f", worst {self.worst}" if self.worst else ""
        local = self.slot.astimezone(ZoneInfo(self.timezone))
        return (f"{self.schedule} on {self.target} (slot {local:%Y-%m-%d %H:%M} {self.timezone}, "
                f"attempt {self.attempt}): {self.status}{worst}{why}{where}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def run_due(config, *, now: dt.datetime | None = None, progress: Callable[[str], None] = lambda s: None,
            output_dir: Path | None = None) -> list[JobOutcome]:
    """Run every job whose newest cron slot at or before now has not run yet (a missed slot is caught up once,
    not once per slot missed), every retry whose backoff has passed, and every job waiting for a target that
    answers again. A schedule seen for the first time starts at its next slot (see `first_seen`).

    Schedules run in feeding order (schedule/order.py): a job whose report links others' waits, on each target,
    while a job feeding it is running or retrying, and runs in the tick that job finishes."""
    now = now or _now()
    schedules = order.ordered(load_schedules(config))
    store = JobStore(config.history_url)
    probe = Probe(config)  # one connection attempt per target per tick, however many jobs wait for it
    out: list[JobOutcome] = []
    try:
        store.reclaim_stale(now.timestamp())
        for s in schedules:
            claims: list[Claim] = []
            targets = s.resolve_targets(config)
            feeders = order.feeders(s, schedules)
            for row in store.due_retries(s.name, now.timestamp()):
                problem = foreign_row(row, s, targets)
                if problem is not None:
                    if store.refuse_retry(row, problem, now.timestamp()):
                        progress(f"{s.name}: ignored job row {row['id']} (target {row['target']!r}): {problem}")
                    continue
                c = store.claim_retry(row, now.timestamp())
                if c is not None:
                    claims.append(c)
            claims += _waiting(store, s, targets, feeders, now, probe, progress)
            slot = s.latest_slot(now)
            if first_seen(store, s, targets, slot, now, progress):
                continue
            for target in targets:
                busy = store.unfinished(feeders, target, slot.timestamp())
                if busy:
                    if store.hold_slot(s.name, target, slot.timestamp(), now.timestamp(), _feeding(busy)):
                        progress(f"{s.name} on {target}: waits for {_feeding(busy)}")
                    continue
                c = store.claim_slot(s.name, target, slot.timestamp(), now.timestamp())
                if c is not None:
                    claims.append(c)
            out += _run_claims(config, store, s, claims, output_dir, progress, clock=now.timestamp())
    finally:
        store.close()
    return out


def _feeding(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['schedule']} ({r['status']})" for r in rows)


def _waiting(store: JobStore, s: Schedule, targets: list[str], feeders: list[str], now: dt.datetime,
             probe: Probe, progress: Callable[[str], None]) -> list[Claim]:
    """Claims for the schedule's waiting jobs whose wait is over: a target that answers the probe again within
    the slot's period (until the schedule's next slot), or feeding jobs that finished. A target still silent at the
    next slot closes its job as failed (people were told already)."""
    claims = []
    for row in store.waiting(s.name):
        problem = foreign_row(row, s, targets)
        if problem is not None:
            if store.refuse_retry(row, problem, now.timestamp()):
                progress(f"{s.name}: ignored job row {row['id']} (target {row['target']!r}): {problem}")
            continue
        slot = dt.datetime.fromtimestamp(row["slot"], dt.timezone.utc)
        end = s.next_slot(slot)
        if row["status"] == WAITING_TARGET:
            if now >= end:
                if store.close_row(row, f"{row['error']}; it did not answer before the next slot "
                                    f"({s.local(end):%Y-%m-%d %H:%M} {s.timezone})", now.timestamp()):
                    progress(f"{s.name} on {row['target']}: gave up waiting for the target (its next slot has come)")
                continue
            if not probe(row["target"]):
                continue
        elif now < end and store.unfinished(feeders, row["target"], row["slot"]):
            continue  # a feeding job is still running or retrying
        c = store.claim_waiting(row, now.timestamp())
        if c is not None:
            claims.append(c)
    return claims


def first_seen(store: JobStore, s: Schedule, targets: list[str], slot: dt.datetime, now: dt.datetime,
               progress: Callable[[str], None] = lambda s: None) -> bool:
    """True when `s` has no row yet and its newest slot is not run: that slot belongs to the time before the
    schedule existed, so it is recorded as skipped and the first slot run is the next one. Not so with
    `catch_up = true`, nor for a slot of this very minute (the one the timer fires for)."""
    if s.catch_up or (now - slot).total_seconds() < TICK_S or store.seen(s.name):
        return False
    first = s.local(s.next_slot(now))
    reason = (f"the schedule was first seen at {s.local(now):%Y-%m-%d %H:%M} {s.timezone}, after this slot; "
              "catch_up = true runs it")
    if store.skip_slot(s.name, targets, slot.timestamp(), now.timestamp(), reason):
        progress(f"{s.name}: new schedule, first slot {first:%Y-%m-%d %H:%M} {s.timezone} (the slot of "
                 f"{s.local(slot):%Y-%m-%d %H:%M} came before it; set catch_up = true to run that one now)")
    return True


def foreign_row(row: dict[str, Any], s: Schedule, targets: list[str]) -> str | None:
    """Why a retry or waiting row of schedule `s` must not run, or None: a row (written to a store others may write
    too) only ever runs its schedule's runbook on the schedule's targets, within its attempts, as configured now."""
    if row["target"] not in targets:
        return f"{row['target']!r} is not one of the schedule's targets ({', '.join(targets)})"
    attempt = row["attempt"]
    if row["status"] == WAITING_FEED:
        return None if attempt == 0 else f"attempt {attempt!r} is not a job waiting for its first run"
    if row["status"] == WAITING_TARGET:  # every attempt was made; it runs once more
        return None if isinstance(attempt, int) and 1 <= attempt <= s.max_attempts else \
            f"attempt {attempt!r} is not one the schedule makes (max_attempts {s.max_attempts})"
    if not isinstance(attempt, int) or not 1 <= attempt < s.max_attempts:
        return f"attempt {attempt!r} is not a retry the schedule makes (max_attempts {s.max_attempts})"
    return None


def run_now(config, name: str, *, progress: Callable[[str], None] = lambda s: None,
            output_dir: Path | None = None) -> list[JobOutcome]:
    """Run one schedule's job now, on each of its targets, as an extra slot (its regular slots are unaffected)."""
    schedules = {s.name: s for s in load_schedules(config)}
    if name not in schedules:
        raise UsageError(f"schedule {name!r} not found; known: {', '.join(sorted(schedules)) or 'none'}")
    s = schedules[name]
    store = JobStore(config.history_url)
    out = []
    try:
        start = _now()  # a first manual run is no reason for the timer to catch up the slot before it
        first_seen(store, s, s.resolve_targets(config), s.latest_slot(start), start, progress)
        for target in s.resolve_targets(config):
            now = time.time()
            c = None
            while c is None:  # a manual run's slot is its own start time, unique to the microsecond
                c = store.claim_slot(s.name, target, now, now)
                now += 1e-6
            out += _run_claims(config, store, s, [c], output_dir, progress)
    finally:
        store.close()
    return out


def _run_claims(config, store: JobStore, s: Schedule, claims: list[Claim], output_dir: Path | None,
                progress: Callable[[str], None], clock: float | None = None) -> list[JobOutcome]:
    """A schedule's claimed jobs run as a fleet: up to the number of cores at once, each in its own process. People
    hear of them once all are back: one digest per slot (schedule/notify/dispatch.py)."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from .notify.dispatch import announce_claims, held_contexts  # noqa: PLC0415

    if not claims:
        return []
    out: list[JobOutcome] = []
    held, contexts = held_contexts(len(claims))  # in them, each attempt's _notify hands its outcome to `held`
    with ThreadPoolExecutor(max_workers=max(1, min(len(claims), os.cpu_count() or 2))) as pool:
        for outcome in pool.map(lambda cc: cc[0].run(_attempt, config, store, s, cc[1], output_dir, clock=clock),
                                zip(contexts, claims)):
            progress(outcome.line())
            out.append(outcome)
    if s.notify and held:
        for outcome, results in announce_claims(config, s, out, held, clock=clock):
            outcome.notifications = results
            sidecar = _read(outcome.report)
            if outcome.report and sidecar is not None:
                _write_notifications(Path(outcome.report), sidecar, results)
    return out


def parameters(s: Schedule, slot: dt.datetime) -> dict[str, Any]:
    """The schedule's parameters, and for a runbook with a `month` parameter the schedule does not set, the month
    the slot reports on in the schedule's time zone (the runbook's own default would be the month before the run
    in UTC), and for one with a `timezone` parameter, the schedule's zone."""
    from ..run.runner import describe  # noqa: PLC0415

    declared = {p.name for p in describe(s.runbook)}
    out = dict(s.parameters)
    if "month" not in out and "month" in declared:
        out["month"] = s.month_of(slot)
    if "timezone" not in out and "timezone" in declared:
        out["timezone"] = s.timezone  # the month's boundaries on the schedule's clock
    return out


def _cli_value(v: Any) -> str:
    """A TOML parameter value as `-p NAME=VALUE` text (lists and tables as JSON, as the CLI reads them)."""
    if isinstance(v, str):
        return v
    return json.dumps(v)


def _attempt(config, store: JobStore, s: Schedule, c: Claim, output_dir: Path | None,
             clock: float | None = None) -> JobOutcome:
    """One attempt, in its own `opsbook run` process (a crash or a hung kernel cannot take run-due down);
    `clock` is the invocation's time (backoffs are counted in it, from when the attempt ended).

    A run that could not reach its target (its critical connectivity.unreachable finding) is a failed attempt;
    after the last one people are told once and the job waits for the target (see `_waiting`). A run that ended
    without a report (killed at its timeout, crashed) still gets one in the reports folder (schedule/noreport.py)."""
    from ..fleet.run import config_text  # noqa: PLC0415
    from ..fleet.task import run_target  # noqa: PLC0415

    t0 = time.time()
    slot = dt.datetime.fromtimestamp(c.slot, dt.timezone.utc)
    outcome = JobOutcome(s.name, c.target, slot, c.attempt, "failed", timezone=s.timezone)
    retry = True
    cfg = Path(config.path).absolute() if config.path is not None and Path(config.path).is_file() else None
    root = Path(output_dir or config.reports_dir).absolute()
    params = parameters(s, slot)
    raw = run_target(s.runbook, c.target, {k: _cli_value(v) for k, v in params.items()},
                     config_path=str(cfg) if cfg else None, config_text=None if cfg else config_text(config),
                     timeout_s=s.timeout_s, output_dir=str(root), started_by="schedule")
    result = raw.get("result")
    down = unreachable(result)
    if result is not None:
        outcome.report = result.get("sidecar")
        outcome.worst = _worst(result.get("findings") or [])
        if result.get("status") == "ok" and down is None:
            outcome.status = "ok"
        else:
            outcome.error = down or result.get("error") or "the runbook failed"
    else:
        outcome.error = raw.get("error") or "the run produced no report"
        retry = raw.get("exit_code") != 2  # a parameter or target that cannot work: trying again will not help
        from .noreport import find_or_record  # noqa: PLC0415

        outcome.report = find_or_record(
            config, root, runbook=s.runbook, target=c.target, params=params, started=t0, ended=time.time(),
            error=outcome.error, about=f"The scheduled run of {s.name} for the slot of "
                                       f"{s.local(slot):%Y-%m-%d %H:%M} {s.timezone} (attempt {c.attempt})")
    now = (clock if clock is not None else t0) + (time.time() - t0)
    if c.rerun:
        outcome.note = "the run once more, now that the target answers again"
    if outcome.status != "ok" and retry and c.attempt < s.max_attempts and not c.rerun:
        outcome.status = "retrying"
        store.finish(c, status="retrying", now=now, report=outcome.report, worst=outcome.worst,
                     error=outcome.error, next_retry_at=now + s.retry_backoff_s * 2 ** (c.attempt - 1))
        return outcome  # people hear of a failure once, after the last attempt
    end = s.next_slot(slot)
    if down is not None and not c.rerun and now < end.timestamp():
        outcome.note = (f"waiting for {c.target} to answer: the job runs once more when it does, until the next "
                        f"slot ({s.local(end):%Y-%m-%d %H:%M} {s.timezone})")
        store.finish(c, status=WAITING_TARGET, now=now, report=outcome.report, worst=outcome.worst,
                     error=outcome.error, next_retry_at=end.timestamp())
    else:
        store.finish(c, status=outcome.status, now=now, report=outcome.report, worst=outcome.worst,
                     error=outcome.error)
    if not (c.rerun and down is not None):  # a target gone again: its failure was told after the last attempt
        outcome.notifications = _notify(config, s, outcome)
    return outcome


def _worst(findings: list[dict[str, Any]]) -> str:
    ranks = [SEVERITY_RANK.get(f.get("severity"), 0) for f in findings if isinstance(f, dict)]
    best = max(ranks, default=0)
    return next(k for k, v in SEVERITY_RANK.items() if v == best)


def events_of(s: Schedule, outcome: JobOutcome) -> set[str]:
    """What happened, in the words of a notifier's `on` list: failed; done (a report is ready); critical (it found
    something at or above the schedule's fail_on)."""
    if outcome.status == "failed":
        return {"failed"}
    events = {"done"}
    if SEVERITY_RANK.get(outcome.worst or "ok", 0) >= SEVERITY_RANK[s.fail_on]:
        events.add("critical")
    return events


def _notify(config, s: Schedule, outcome: JobOutcome) -> list[dict[str, Any]]:
    """Tell the schedule's notifiers about a finished job; [] when it runs among its slot's others, whose digest
    `_run_claims` sends when all are back (the records then reach the outcome and its sidecar)."""
    if not s.notify:
        return []
    from .notify.dispatch import announce, hold  # noqa: PLC0415

    if hold(outcome):
        return []
    sidecar = _read(outcome.report)
    results = announce(config, s, [outcome])
    if outcome.report and sidecar is not None:
        _write_notifications(Path(outcome.report), sidecar, results)
    return results


def _read(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_notifications(path: Path, sidecar: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Record in the sidecar what was sent where and how it went (DESIGN: sidecar `notifications`)."""
    sidecar = {**sidecar, "notifications": [*sidecar.get("notifications", []), *results]}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(sidecar, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
