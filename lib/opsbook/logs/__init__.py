"""Reading PostgreSQL's own logs: csvlog, jsonlog, stderr with any log_line_prefix, Supabase exports."""
from __future__ import annotations

from .event import KINDS, OWN_APPLICATION, Event, OwnSessions, classify
from .formats import Problems
from .reader import count_kinds, iter_events, plan
from .sources import LogSourceError

__all__ = ["KINDS", "OWN_APPLICATION", "Event", "LogSourceError", "OwnSessions", "Problems", "classify",
           "count_kinds", "iter_events", "plan", "show_prefix", "show_timezone", "check_log_timezone"]


def show_prefix(conn) -> str | None:
    """The server's log_line_prefix (a psycopg or SQLAlchemy connection), for reading its stderr log."""
    return _show(conn, "log_line_prefix")


def show_timezone(conn) -> str | None:
    """The server's log_timezone ('Europe/Paris'), for reading the zone abbreviations of its log's timestamps."""
    return _show(conn, "log_timezone") or None


def check_log_timezone(name: str | None) -> str | None:
    """The log_timezone as given (a parameter, a config value), or LogSourceError when the tz database lacks it:
    for checking a parameter before any log is read."""
    from .timeparse import BadTimestamp, load_zone  # noqa: PLC0415

    if name:
        try:
            load_zone(name)
        except BadTimestamp as e:
            raise LogSourceError(str(e)) from None
    return name or None


def _show(conn, name: str) -> str | None:
    try:
        cur = conn.execute(f"SHOW {name}")
        row = cur.fetchone()
        return row[0] if row else None
    except Exception:  # noqa: BLE001 - not connected or not allowed: detect from the lines instead
        return None
