"""What `schedule install` installs for one configuration: `schedule run-due` every minute, history snapshots at
`[history] snapshot_every` (the monthly reports' headlines read them), `watch` when `[history] watch_every` is set;
each named with a short id of the configuration's path, so two configurations keep two sets of timers."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError

SNAPSHOT_EVERY = "15m"  # 96 read-only snapshots a day: enough for daily growth and the month's curves, cheap
MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)  # what cron's */N and OnCalendar's 00/N repeat evenly in an hour
HOURS = (1, 2, 3, 4, 6, 8, 12)  # ... in a day
WATCH_WINDOW_S = 3590  # cron starts `watch` every hour for this long: a short gap, never two watchers at once
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Job:
    """One timer: `opsbook [--config X] ARGS`, at cron fields `cron` (a crontab line) and systemd `calendar`
    (a .timer; None: a long-running service that restarts), logging into reports/`log` from cron."""

    name: str  # unit names opsbook-NAME-ID.*
    label: str  # the crontab marker: `# opsbook LABEL ...`
    args: tuple[str, ...]
    cron: str
    calendar: str | None
    log: str
    description: str


def config_id(config_file: Path | None) -> str:
    """8 hex digits of the configuration file's absolute path (`default` for the built-in one): stable, short."""
    if config_file is None:
        return "default"
    return hashlib.sha256(str(Path(config_file).absolute()).encode("utf-8")).hexdigest()[:8]


def interval(value: object, key: str) -> tuple[str, str] | None:
    """`value` ("15m", "2h", "1d", "off") as (cron fields, OnCalendar); None for off; else ConfigError naming
    `key`: cron and OnCalendar repeat evenly only for minutes that divide an hour or hours that divide a day."""
    text = str(value).strip().lower()
    if text in ("off", "never", "no"):
        return None
    hint = (f"[history] {key} = {value!r}: give minutes that divide an hour ({', '.join(f'{m}m' for m in MINUTES)}), "
            f"hours that divide a day ({', '.join(f'{h}h' for h in HOURS)}), 1d, or \"off\"")
    number, unit = text[:-1], text[-1:]
    if unit not in UNITS_S or not number.isdigit() or int(number) == 0:
        raise ConfigError(hint)
    seconds = int(number) * UNITS_S[unit]
    if seconds % 60:
        raise ConfigError(hint)
    minutes = seconds // 60
    if minutes in MINUTES:
        return ("* * * * *" if minutes == 1 else f"*/{minutes} * * * *",
                "*-*-* *:*:00" if minutes == 1 else f"*-*-* *:00/{minutes}:00")
    if minutes % 60 == 0 and minutes // 60 in HOURS:
        hours = minutes // 60
        return ("0 * * * *" if hours == 1 else f"0 */{hours} * * *",
                "*-*-* *:00:00" if hours == 1 else f"*-*-* 00/{hours}:00:00")
    if minutes == 1440:
        return "0 0 * * *", "*-*-* 00:00:00"
    raise ConfigError(hint)


def watch_every(value: object) -> str:
    """`[history] watch_every` checked: a duration of at least a second, below the hour `watch` is started for."""
    from ..core.errors import UsageError  # noqa: PLC0415
    from ..history.prune import parse_duration  # noqa: PLC0415 - the syntax `watch --every` reads

    try:
        seconds = parse_duration(str(value))
    except UsageError:
        seconds = 0
    if not 1 <= seconds <= 600:
        raise ConfigError(f"[history] watch_every = {value!r}: give a duration from 1s to 10m, e.g. \"10s\"")
    return str(value).strip()


def jobs(config) -> list[Job]:
    """The timers of this configuration: run-due always; snapshots unless `snapshot_every = "off"` (and, with no
    [[schedules]], only when snapshot_every is set: nothing reads them otherwise); watch when watch_every is set."""
    history = config.raw.get("history") or {}
    out = [Job("schedule", "schedule run-due", ("schedule", "run-due"), "* * * * *", "*-*-* *:*:00",
               "schedule.log", "run the scheduled runbooks that are due")]
    every = history.get("snapshot_every")
    if every is not None or config.raw.get("schedules"):
        when = interval(SNAPSHOT_EVERY if every is None else every, "snapshot_every")
        if when is not None:
            out.append(Job("snapshot", "snapshot", ("snapshot", "--all"), when[0], when[1], "history.log",
                           "snapshot every target's statistics into the history store"))
    if history.get("watch_every") is not None:
        sample = watch_every(history["watch_every"])
        out.append(Job("watch", "watch", ("watch", "--all", "--every", sample, "--for", f"{WATCH_WINDOW_S}s"),
                       "0 * * * *", None, "history.log", f"sample activity every {sample} for post-mortems"))
    return out
