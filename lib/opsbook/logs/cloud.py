"""Logs in a cloud's JSON envelope, one object a line: Google Cloud SQL (Cloud Logging entries whose `textPayload`
is PostgreSQL's stderr line) and CloudNativePG (the instance manager's `{"logger": "postgres", "record": {csvlog
fields}}`)."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Iterator, TextIO

from .event import Event
from .records import assemble, host
from .redaction import redact_text
from .timeparse import BadTimestamp, parse_ts

CLOUDSQL_PREFIX = "%m [%p]: [%l-1] db=%d,user=%u "  # what Cloud SQL for PostgreSQL sets, not changeable
CNPG_OWN = "CloudNativePG's own messages (instance manager, not PostgreSQL)"


def kind_of(d: dict) -> str | None:
    """"cloudsql" or "cnpg" for one decoded line of those envelopes."""
    if "textPayload" in d or ("insertId" in d and "logName" in d):
        return "cloudsql"
    if isinstance(d.get("record"), dict) or ("logger" in d and "msg" in d):
        return "cnpg"
    return None


def _objects(f: TextIO, source: str, problems) -> Iterator[tuple[int, dict]]:
    loads = json.loads
    for n, line in enumerate(f, 1):
        start = line.find("{")  # `kubectl logs --timestamps` puts its own time first
        if start < 0:
            if line.strip():
                problems.add(source, "malformed JSON line", n)
            continue
        try:
            d = loads(line[start:])
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            problems.add(source, "malformed JSON line", n)
            continue
        if isinstance(d, dict):
            yield n, d
        else:
            problems.add(source, "malformed JSON line", n)


def cloudsql_lines(rows, source: str, problems):
    """(line number, textPayload, entry time, None, {}) of Cloud Logging entries (dicts)."""
    for n, d in rows:
        text = d.get("textPayload")
        if not isinstance(text, str):
            problems.add(source, "Cloud Logging entry without a textPayload", n)
            continue
        try:
            ts = parse_ts(str(d.get("timestamp") or d.get("receiveTimestamp")))
        except BadTimestamp:
            ts = None
        yield n, text.rstrip("\n"), ts, None, {}


def read_cloudsql(f: TextIO, source: str, problems, clock) -> Iterator[Event]:
    """Cloud SQL's postgres.log as Cloud Logging exports it (`gcloud logging read --format=json` lines)."""
    yield from assemble(cloudsql_lines(_objects(f, source, problems), source, problems), source, problems,
                        CLOUDSQL_PREFIX, clock)


def read_cnpg(f: TextIO, source: str, problems, clock) -> Iterator[Event]:
    """A CloudNativePG instance's log (`kubectl logs`): PostgreSQL's records (and pgaudit's) carry csvlog's
    fields; the instance manager's own lines are left out, counted."""
    for n, d in _objects(f, source, problems):
        r = d.get("record")
        if not isinstance(r, dict) or "error_severity" not in r:
            problems.leave_out(CNPG_OWN)
            continue
        try:
            ts = clock(str(r.get("log_time") or "")) if r.get("log_time") else _ts(d.get("ts"))
        except BadTimestamp as e:
            problems.add(source, f"bad timestamp: {e}", n)
            continue
        get = r.get
        pid = get("process_id")
        yield Event(ts, str(get("error_severity")), str(get("message") or ""), sqlstate=get("sql_state_code"),
                    user=get("user_name"), database=get("database_name"), client=host(get("connection_from")),
                    application=get("application_name"), pid=_pid(pid),
                    detail=redact_text(get("detail")), hint=get("hint"), context=redact_text(get("context")),
                    statement=redact_text(get("query") or get("internal_query")), source=source, line=n)


def _pid(v) -> int | None:
    text = str(v or "")  # "²".isdigit() is true, and int() has a limit on digits
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


def _ts(v) -> datetime:
    if v is None:
        raise BadTimestamp("no timestamp")
    return parse_ts(str(v))
