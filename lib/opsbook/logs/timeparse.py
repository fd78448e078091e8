"""PostgreSQL's log timestamps ("2026-12-01 09:40:33.123 UTC", "... CEST", "... +01", epoch) as aware datetimes.

PostgreSQL writes the zone as log_timezone's abbreviation (CEST, EDT, MSK) or, for zones without one, a numeric
offset. An abbreviation is resolved with log_timezone when the caller knows it (a Clock), else from ABBREVIATIONS."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\s*(\S*)\Z")
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)?(?::?(\d\d))?\Z")
_UTC_NAMES = ("", "UTC", "GMT", "Z", "+00", "+00:00", "UCT", "Etc/UTC")
_H = 3600
# the abbreviations log_timezone's zones print, each naming one offset (seconds east of UTC): the tz database's
# current abbreviations of the zones most servers run in. Not here: those naming several offsets (AMBIGUOUS).
ABBREVIATIONS = {
    "WET": 0, "WEST": _H, "BST": _H, "CET": _H, "CEST": 2 * _H, "MET": _H, "MEST": 2 * _H, "EET": 2 * _H,
    "EEST": 3 * _H, "MSK": 3 * _H, "SAST": 2 * _H, "WAT": _H, "CAT": 2 * _H, "EAT": 3 * _H, "PKT": 5 * _H,
    "HKT": 8 * _H, "PHT": 8 * _H, "WIB": 7 * _H, "KST": 9 * _H, "JST": 9 * _H, "AWST": 8 * _H,
    "ACST": 9 * _H + 1800, "ACDT": 10 * _H + 1800, "AEST": 10 * _H, "AEDT": 11 * _H, "NZST": 12 * _H,
    "NZDT": 13 * _H, "HST": -10 * _H, "AKST": -9 * _H, "AKDT": -8 * _H, "PST": -8 * _H, "PDT": -7 * _H,
    "MST": -7 * _H, "MDT": -6 * _H, "CDT": -5 * _H, "EST": -5 * _H, "EDT": -4 * _H, "NST": -3 * _H - 1800,
    "NDT": -2 * _H - 1800,
}
AMBIGUOUS = {"IST": "India +05:30, Israel +02, Ireland +01", "CST": "US Central -06, China +08, Cuba -05",
             "AST": "Atlantic -04, Arabia +03", "ADT": "Atlantic -03, Arabia +04", "IDT": "Israel +03, India +06:30",
             "GST": "Gulf +04, South Georgia -02", "SST": "Samoa -11, Singapore +08"}


class BadTimestamp(ValueError):
    """A timestamp that is not one PostgreSQL writes, or whose zone cannot be known."""


@lru_cache(maxsize=64)
def zone(name: str):
    """A fixed-offset tzinfo for what PostgreSQL prints after the time: UTC, GMT, +01, -03:30, or a zone
    abbreviation naming one offset (CEST, EDT, MSK); BadTimestamp for an ambiguous or unknown one."""
    if name in _UTC_NAMES:
        return timezone.utc
    m = _OFFSET.match(name)
    if m:
        secs = int(m.group(2)) * 3600 + int(m.group(3) or 0) * 60 + int(m.group(4) or 0)
        return timezone(timedelta(seconds=-secs if m.group(1) == "-" else secs))
    if name in ABBREVIATIONS:
        return timezone(timedelta(seconds=ABBREVIATIONS[name]), name)
    if name in AMBIGUOUS:
        raise BadTimestamp(f"time zone {name} is ambiguous ({AMBIGUOUS[name]}); give the server's log_timezone")
    raise BadTimestamp(f"unknown time zone {name!r}; give the server's log_timezone")


def load_zone(name: str):
    """The zoneinfo zone of a log_timezone setting ('Europe/Paris'); BadTimestamp when the tz database lacks it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise BadTimestamp(f"log_timezone {name!r} is not in the tz database") from e


@lru_cache(maxsize=4096)
def _second(day: str, hms: str, tz: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=zone(tz))


_FAST: dict[str, datetime] = {}
# the milliseconds %m and csvlog/jsonlog write, as timedeltas: adding one to the second's datetime costs a tenth
# of datetime.replace(microsecond=...)
_MS = {f"{i:03d}": timedelta(milliseconds=i) for i in range(1000)}


def parse_ts(text: str) -> datetime:
    """An aware datetime from a log timestamp whose zone names one offset; epoch seconds ("%n") too."""
    # fast path for what %m and csvlog/jsonlog write: "2026-12-01 09:40:33.123 UTC" (one dict lookup a second)
    if len(text) > 24 and text[19] == "." and text[23] == " " and text[10] == " ":
        key = text[:19] + text[23:]
        base = _FAST.get(key)
        if base is None:  # a new second
            if len(_FAST) > 100_000:
                _FAST.clear()
            m = _STAMP.match(text)
            if m is None:
                raise BadTimestamp(f"not a timestamp: {text[:40]!r}")
            base = _FAST[key] = _second(m.group(1), m.group(2), m.group(4))
        ms = text[20:23]
        delta = _MS.get(ms)
        if delta is not None:
            return base + delta
        if ms.isdigit():  # digits of another script: int() reads them
            return base.replace(microsecond=int(ms) * 1000)
    m = _STAMP.match(text.strip())
    if m:
        base = _second(m.group(1), m.group(2), m.group(4))
        frac = m.group(3)
        return base.replace(microsecond=int(frac.ljust(6, "0"))) if frac else base
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except (TypeError, ValueError):
        pass
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise BadTimestamp(f"not a timestamp: {text[:40]!r}") from e
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def looks_like_ts(text: str) -> bool:
    """A timestamp as PostgreSQL writes it, whatever its zone (for telling a csvlog row from other CSV)."""
    return _STAMP.match(text.strip()) is not None


SLACK = timedelta(seconds=1)  # how far back a line may go (lines a few ms out of order) before the clock folds


class Clock:
    """The timestamps of one log file, read in order: an abbreviation is resolved with log_timezone (a tz database
    name; None: unknown) through zoneinfo, the one of its two readings that carries that abbreviation; where both
    do (or neither), by order: in the repeated hour of autumn, a line whose first reading would go back in time
    is the second pass (fold=1). Numeric offsets and UTC need no zone."""

    def __init__(self, log_timezone: str | None = None):
        self.tz = load_zone(log_timezone) if log_timezone else None
        self.last: datetime | None = None

    def __call__(self, text: str) -> datetime:
        if self.tz is None:
            return parse_ts(text)
        if len(text) > 24 and text[19] == "." and text[23] == " " and text[10] == " " and text[20:23] in _MS:
            # what %m and csvlog/jsonlog write: "2026-10-25 02:30:00.123 CET"
            abbr, day, hms, delta = text[24:], text[:10], text[11:19], _MS[text[20:23]]
        else:
            m = _STAMP.match(text.strip())
            if not m:
                return self._seen(parse_ts(text))
            abbr, day, hms, frac = m.group(4), m.group(1), m.group(2), m.group(3)
            delta = timedelta(microseconds=int(frac.ljust(6, "0")) if frac else 0)
        if abbr in _UTC_NAMES or not abbr.isalpha():
            return self._seen(parse_ts(text))
        first, second = _readings(day, hms, abbr, self.tz)
        ts = first + delta  # each reading is a whole second
        if second is not first and self.last is not None and ts < self.last - SLACK:
            alt = second + delta
            if alt >= self.last - SLACK:
                ts = alt
        return self._seen(ts)

    def _seen(self, ts: datetime) -> datetime:
        if self.last is None or ts > self.last:
            self.last = ts
        return ts


@lru_cache(maxsize=4096)
def _readings(day: str, hms: str, abbr: str, tz) -> tuple[datetime, datetime]:
    """(first, second) readings of a wall-clock second in `tz` as fixed-offset datetimes (the same object when
    only one fits the abbreviation); the table's offset when the zone never prints this abbreviation."""
    wall = datetime.fromisoformat(f"{day}T{hms}")
    both = [wall.replace(tzinfo=tz, fold=f) for f in (0, 1)]
    fit = [d for d in both if d.tzname() == abbr] or ([] if abbr in ABBREVIATIONS or abbr in AMBIGUOUS else both)
    if not fit:  # the zone never says this (log_timezone changed, or a wrong one given): the abbreviation decides
        one = wall.replace(tzinfo=zone(abbr))
        return one, one
    out = [d.replace(tzinfo=timezone(d.utcoffset(), d.tzname())) for d in fit]
    if len(out) == 1 or out[0] == out[1]:
        return out[0], out[0]
    return out[0], out[1]
