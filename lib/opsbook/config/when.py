"""A time a user gives as a parameter: `now`, `now-2h`, `now-30m`, or ISO 8601 with a time zone."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..core.errors import ParameterError

_RELATIVE = re.compile(r"^now\s*(?:([+-])\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w))?$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, *, now: datetime | None = None, name: str = "time") -> datetime:
    """An aware UTC datetime from `now`, `now-2h`, `now-30m` or an ISO 8601 time with an offset (or Z)."""
    now = now or datetime.now(timezone.utc)
    s = str(text).strip()
    m = _RELATIVE.match(s.lower())
    if m:
        if not m.group(1):
            return now
        delta = timedelta(seconds=float(m.group(2)) * _UNITS[m.group(3)])
        return now - delta if m.group(1) == "-" else now + delta
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ParameterError(f"{name} {text!r} is not a time: use ISO 8601 with a zone "
                             f"(2026-11-21T22:40:00Z, 2026-11-21T23:40:00+01:00), now, or now-2h") from None
    if dt.tzinfo is None:
        raise ParameterError(f"{name} {text!r} has no time zone: add Z or an offset like +01:00 "
                             f"(a post-mortem mixes server, log and laptop clocks)")
    return dt.astimezone(timezone.utc)


def is_relative(text: str) -> bool:
    """`now`, `now-2h`...: a time said relative to the run, not a moment the user named."""
    return bool(_RELATIVE.match(str(text).strip().lower()))
