"""Reading PostgreSQL's own logs: csvlog, jsonlog, stderr with any log_line_prefix, Supabase exports."""
from __future__ import annotations

from .event import KINDS, Event, classify
from .formats import Problems
from .reader import count_kinds, iter_events, plan
from .sources import LogSourceError

__all__ = ["KINDS", "Event", "LogSourceError", "Problems", "classify", "count_kinds", "iter_events", "plan",
           "show_prefix"]


def show_prefix(conn) -> str | None:
    """The server's log_line_prefix (a psycopg or SQLAlchemy connection), for reading its stderr log."""
    try:
        cur = conn.execute("SHOW log_line_prefix")
        row = cur.fetchone()
        return row[0] if row else None
    except Exception:  # noqa: BLE001 - not connected or not allowed: detect from the lines instead
        return None
