"""`[[schedules]]` in opsbook.toml, validated: cron expression, time zone, runbook, targets, notifiers."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.errors import ConfigError

KEYS = {"name", "runbook", "targets", "cron", "timezone", "parameters", "notify", "fail_on", "max_attempts",
        "retry_backoff_s", "timeout_s", "description", "catch_up"}
FAIL_ON = ("warning", "critical")
# A failed run is tried again this many times in all (the first try included), `retry_backoff_s` x 2^(n-1) apart,
# then recorded as failed and left alone until the schedule's next slot (Superset's alerts do the same).
MAX_ATTEMPTS = 3
RETRY_BACKOFF_S = 60
TIMEOUT_S = 3600  # one run on one target; then it is killed (with its kernel) and counts as a failed attempt


@dataclass(frozen=True)
class Schedule:
    """One `[[schedules]]` entry: which runbook runs on which targets, when (cron in a time zone), who is told."""

    name: str
    runbook: str
    targets: tuple[str, ...]  # names, "all", or "tag:NAME" entries, as written
    cron: str
    timezone: str = "UTC"
    parameters: dict[str, Any] = field(default_factory=dict)
    notify: tuple[str, ...] = ()
    fail_on: str = "critical"
    max_attempts: int = MAX_ATTEMPTS
    retry_backoff_s: float = RETRY_BACKOFF_S
    timeout_s: float = TIMEOUT_S
    description: str = ""
    catch_up: bool = False  # seen for the first time, run the newest past slot at once (else wait for the next)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, t: dt.datetime) -> dt.datetime:
        """`t` (UTC-aware) on the schedule's clock."""
        return t.astimezone(self.tz)

    def month_of(self, slot: dt.datetime) -> str:
        """The month a run for `slot` reports on, `YYYY-MM`: the last complete month at the slot's local date (a
        Sydney `0 6 1 * *` slot, 19:00 UTC on Jan 31, is Feb 1 there: January)."""
        from ..health.month import parse_month  # noqa: PLC0415

        return parse_month(None, now=self.local(slot)).key

    def latest_slot(self, now: dt.datetime) -> dt.datetime:
        """The newest cron slot at or before `now` (UTC-aware), as a UTC datetime."""
        from croniter import croniter  # noqa: PLC0415 - only the schedule commands need it

        base = now.astimezone(self.tz).replace(microsecond=0) + dt.timedelta(seconds=1)
        return croniter(self.cron, base).get_prev(dt.datetime).astimezone(dt.timezone.utc)

    def next_slot(self, now: dt.datetime) -> dt.datetime:
        """The first cron slot after `now`, as a UTC datetime."""
        from croniter import croniter  # noqa: PLC0415

        return croniter(self.cron, now.astimezone(self.tz)).get_next(dt.datetime).astimezone(dt.timezone.utc)

    def resolve_targets(self, config) -> list[str]:
        """Target names: `all` is every configured target but `demo` (unless demo is the only one), `tag:X` the
        targets tagged X, anything else a target name."""
        out: list[str] = []
        for entry in self.targets:
            if entry == "all":
                names = [n for n in config.targets if n != "demo"] or ["demo"]
            elif entry.startswith("tag:"):
                tag = entry[4:]
                names = [n for n, t in config.targets.items() if tag in _tags(t)]
            else:
                names = [entry]
            out.extend(n for n in names if n not in out)
        return out


def _tags(target) -> list[str]:
    tags = getattr(target, "tags", None) or target.extra.get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, (list, tuple)) else []


def load_schedules(config, *, check_runbooks: bool = True) -> list[Schedule]:
    """Every schedule of the configuration, validated; a problem is a ConfigError (exit 2) naming the schedule."""
    raw = config.raw.get("schedules", [])
    if isinstance(raw, dict):  # [schedules.NAME] tables are accepted too
        raw = [{"name": k, **v} if isinstance(v, dict) else v for k, v in raw.items()]
    if not isinstance(raw, list):
        raise ConfigError("[[schedules]] must be an array of tables, each with name, runbook, targets and cron")
    out, seen = [], set()
    for i, entry in enumerate(raw, 1):
        s = _one(entry, i, config, check_runbooks)
        if s.name in seen:
            raise ConfigError(f"schedule {s.name!r} is defined twice; schedule names must be unique")
        seen.add(s.name)
        out.append(s)
    return out


def _one(entry: Any, i: int, config, check_runbooks: bool) -> Schedule:
    if not isinstance(entry, dict):
        raise ConfigError(f"schedule #{i} must be a table")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"schedule #{i} needs a name")
    where = f"schedule {name!r}"
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(KEYS))}")
    for key in ("runbook", "cron"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ConfigError(f"{where} needs {key} = \"...\"")
    targets = entry.get("targets", ["demo"])
    targets = [targets] if isinstance(targets, str) else targets
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise ConfigError(f"{where}: targets must be a list of target names, \"all\" or \"tag:NAME\"")
    notify = entry.get("notify", [])
    notify = [notify] if isinstance(notify, str) else notify
    if not isinstance(notify, list) or not all(isinstance(n, str) for n in notify):
        raise ConfigError(f"{where}: notify must be a list of names from [notify.NAME]")
    params = entry.get("parameters", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: parameters must be a table of runbook parameters")
    fail_on = entry.get("fail_on", "critical")
    if fail_on not in FAIL_ON:
        raise ConfigError(f"{where}: fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    attempts, backoff = entry.get("max_attempts", MAX_ATTEMPTS), entry.get("retry_backoff_s", RETRY_BACKOFF_S)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 10:
        raise ConfigError(f"{where}: max_attempts must be an integer from 1 to 10")
    if not isinstance(backoff, (int, float)) or isinstance(backoff, bool) or not 0 <= backoff <= 86400:
        raise ConfigError(f"{where}: retry_backoff_s must be a number of seconds from 0 to 86400")
    timeout = entry.get("timeout_s", TIMEOUT_S)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 1 <= timeout <= 86400:
        raise ConfigError(f"{where}: timeout_s must be a number of seconds from 1 to 86400")
    catch_up = entry.get("catch_up", False)
    if not isinstance(catch_up, bool):
        raise ConfigError(f"{where}: catch_up must be true or false")
    s = Schedule(name=name, runbook=entry["runbook"], targets=tuple(targets), cron=entry["cron"].strip(),
                 timezone=entry.get("timezone", "UTC"), parameters=params, notify=tuple(notify), fail_on=fail_on,
                 max_attempts=attempts, retry_backoff_s=float(backoff), timeout_s=float(timeout),
                 description=str(entry.get("description", "")), catch_up=catch_up)
    _check_cron(s, where)
    _check_timezone(s, where)
    for t in s.targets:
        if t != "all" and not t.startswith("tag:") and t not in config.targets:
            raise ConfigError(f"{where}: unknown target {t!r}; known: {', '.join(sorted(config.targets))}")
    if not s.resolve_targets(config):
        raise ConfigError(f"{where}: targets {list(s.targets)} match no configured target")
    from .notify.spec import load_notifiers  # noqa: PLC0415

    notifiers = load_notifiers(config)
    for n in s.notify:
        if n not in notifiers:
            raise ConfigError(f"{where}: unknown notifier {n!r}; known: {', '.join(sorted(notifiers)) or 'none'} "
                              "(define it as [notify.NAME])")
    if check_runbooks:
        from ..run.runner import runbook_names  # noqa: PLC0415

        if s.runbook not in runbook_names():
            raise ConfigError(f"{where}: unknown runbook {s.runbook!r}; known: {', '.join(runbook_names())}")
    return s


def _check_cron(s: Schedule, where: str) -> None:
    from croniter import croniter  # noqa: PLC0415

    fields = s.cron.split()
    if len(fields) != 5 or not croniter.is_valid(s.cron):
        raise ConfigError(f"{where}: cron {s.cron!r} is not a valid 5-field cron expression "
                          "(minute hour day-of-month month day-of-week, e.g. \"0 6 1 * *\")")


def _check_timezone(s: Schedule, where: str) -> None:
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"{where}: unknown timezone {s.timezone!r} (use an IANA name such as "
                          "\"Europe/Berlin\" or \"UTC\")") from None
