"""PostgreSQL's log timestamps ("2026-12-01 09:40:33.123 UTC", "... +01", epoch) as aware datetimes, cached."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\s*(\S*)\Z")
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)?(?::?(\d\d))?\Z")


class BadTimestamp(ValueError):
    """A timestamp that is not one PostgreSQL writes."""


@lru_cache(maxsize=64)
def zone(name: str):
    """A tzinfo for what PostgreSQL prints after the time: UTC, GMT, +01, -03:30, or a zone abbreviation."""
    if name in ("", "UTC", "GMT", "Z", "+00", "+00:00", "UCT", "Etc/UTC"):
        return timezone.utc
    m = _OFFSET.match(name)
    if m:
        secs = int(m.group(2)) * 3600 + int(m.group(3) or 0) * 60 + int(m.group(4) or 0)
        return timezone(timedelta(seconds=-secs if m.group(1) == "-" else secs))
    try:
        from zoneinfo import ZoneInfo  # noqa: PLC0415

        return ZoneInfo(name)
    except Exception as e:  # noqa: BLE001 - unknown abbreviations (CEST, PDT) have no zone file
        raise BadTimestamp(f"unknown time zone {name!r}; set log_timezone to UTC or a numeric offset") from e


@lru_cache(maxsize=4096)
def _second(day: str, hms: str, tz: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=zone(tz))


_FAST: dict[str, datetime] = {}


def parse_ts(text: str) -> datetime:
    """An aware datetime from a log timestamp; epoch seconds ("%n") too."""
    # fast path for what %m and csvlog/jsonlog write: "2026-12-01 09:40:33.123 UTC" (one dict lookup a second)
    if len(text) > 24 and text[19] == "." and text[23] == " " and text[10] == " ":
        key = text[:19] + text[23:]
        base = _FAST.get(key)
        if base is None:
            if len(_FAST) > 100_000:
                _FAST.clear()
            m = _STAMP.match(text)
            if m is None:
                raise BadTimestamp(f"not a timestamp: {text[:40]!r}")
            base = _FAST[key] = _second(m.group(1), m.group(2), m.group(4))
        ms = text[20:23]
        if ms.isdigit():
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
