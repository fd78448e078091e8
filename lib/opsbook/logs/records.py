"""PostgreSQL's stderr-shaped lines carried inside another envelope (syslog, Heroku logplex, Cloud SQL): the prefix,
severity and message of each, and the DETAIL/HINT/CONTEXT/STATEMENT lines that attach to the event before them."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Iterable, Iterator

from .event import Event
from .prefix import SEVERITIES, _TS, compile_prefix
from .redaction import redact_text
from .timeparse import BadTimestamp

ATTACH = {"DETAIL": "detail", "HINT": "hint", "CONTEXT": "context", "STATEMENT": "statement", "QUERY": "context",
          "LOCATION": None}
# no prefix known: whatever comes before the first severity is the prefix (as pgbadger reads syslog)
RELAXED = re.compile(r"(?P<pre>.*?)(?P<severity>" + "|".join(SEVERITIES) + r"):  (?P<message>.*)", re.S)
_TS_IN = re.compile(_TS)
_KEYS = {"user": re.compile(r"\buser=([^,\s]*)"), "database": re.compile(r"\b(?:db|database)=([^,\s]*)"),
         "application": re.compile(r"\bapp(?:lication_name)?=([^,\s]*)"),
         "client": re.compile(r"\b(?:client|host|connection_source)=([^,\s]*)"),
         "sqlstate": re.compile(r"\bsql_error_code = ([0-9A-Z]{5})")}  # Heroku's prefix
_USER_AT_DB = re.compile(r"(?:^|\s)\[?([\w.$-]+)@([\w.$-]+)\]?(?:\s|$)")
_PID = re.compile(r"\[(\d+)\]")
_PORT = re.compile(r"\(\d*\)$|:\d+$")
# PostgreSQL takes a statement of up to 1 GB; opsbook shows and counts events, so one event's text stops there
MAX_RECORD_CHARS = 16 << 20


class Inner:
    """Matches one inner line: with the log_line_prefix when known (its named groups), else RELAXED and the
    fields read from the prefix text (user=, db=, app=, client=, user@db, [pid], a timestamp)."""

    def __init__(self, prefix: str | None):
        self.rx = compile_prefix(prefix) if prefix else None

    def match(self, text: str) -> dict | None:
        if self.rx is not None:
            m = self.rx.match(text)
            if m:
                return {k: v for k, v in m.groupdict().items() if v is not None}
        m = RELAXED.match(text)
        if m is None:
            return None
        pre = m.group("pre").strip().strip('"')
        d = {"severity": m.group("severity"), "message": m.group("message")}
        if pre:
            for name, rx in _KEYS.items():
                x = rx.search(pre)
                if x:
                    d[name] = x.group(1).strip('"')
            if "user" not in d:
                x = _USER_AT_DB.search(pre)
                if x:
                    d["user"], d["database"] = x.group(1), x.group(2)
            x = _TS_IN.search(pre)
            if x:
                d["ts"] = x.group(0)
            x = _PID.search(pre)
            if x:
                d["pid"] = x.group(1)
        return d


def host(client: str | None) -> str | None:
    """The address without its port: "10.0.0.5(54321)" and "10.0.0.5:54321" are 10.0.0.5."""
    if not client:
        return None
    if client.count(":") > 1 and not client.endswith(")"):  # IPv6 without a port
        return client
    return _PORT.sub("", client)


def assemble(lines: Iterable[tuple[int, str, datetime | None, int | None, dict]], source: str, problems,
             prefix: str | None, clock) -> Iterator[Event]:
    """Events from (line number, inner text, envelope time, envelope pid, envelope fields): the inner line's own
    timestamp wins where its prefix has one. A text whose first line starts with a tab continues the event before
    it of the same pid; a DETAIL/HINT/CONTEXT/STATEMENT line attaches to the event before it of the same pid.
    A text the envelope marks as a later line of one message (fields {"continued": True}) never starts an event:
    PostgreSQL writes a primary severity only on a message's first line, so one found there is the user's text.
    An event's text stops growing at MAX_RECORD_CHARS (said in `problems`)."""
    inner = Inner(prefix)
    pending: Event | None = None
    field: str | None = None  # the attribute the last line wrote to, for its continuation lines
    more: list[str] = []  # that attribute's continuation lines, joined once (no quadratic copying)
    size = 0

    def flush():
        nonlocal more, size
        if pending is not None and field is not None and more:
            setattr(pending, field, "\n".join([getattr(pending, field) or "", *more]))
        more, size = [], 0

    for n, text, ts, pid, extra in lines:
        continued = extra.get("continued", False)
        if text.startswith("\t"):
            if pending is not None and field is not None and (pid is None or pending.pid is None or
                                                             pid == pending.pid):
                size += len(text)
                if size <= MAX_RECORD_CHARS:
                    more.append(text[1:])
                elif size - len(text) <= MAX_RECORD_CHARS:
                    problems.add(source, f"message over {MAX_RECORD_CHARS} characters: cut", n)
            continue
        d = inner.match(text)
        if d is None or (continued and d["severity"] not in ATTACH):
            if text.strip():
                problems.add(source, "line without a severity", n)
            continue
        flush()
        sev = d["severity"]
        pid = int(d["pid"]) if d.get("pid") else pid
        message = d["message"].replace("\n\t", "\n")
        if sev in ATTACH:
            if pending is not None and (pid is None or pending.pid is None or pid == pending.pid):
                field = ATTACH[sev]
                if field:
                    setattr(pending, field, message)
            else:
                field = None
            continue
        if pending is not None:
            yield _redacted(pending)
            pending = None
        try:
            when = clock(d["ts"]) if d.get("ts") else ts
        except BadTimestamp as e:
            if ts is None:
                problems.add(source, f"bad timestamp: {e}", n)
                continue
            when = ts
        if when is None:
            problems.add(source, "line without a timestamp", n)
            continue
        get = {**extra, **d}.get
        pending = Event(when, sev, message, sqlstate=get("sqlstate"), user=get("user"), database=get("database"),
                        application=get("application"), client=host(get("client")), pid=pid, source=source, line=n)
        field = "message"
    flush()
    if pending is not None:
        yield _redacted(pending)


def _redacted(e: Event) -> Event:
    e.detail, e.context, e.statement = redact_text(e.detail), redact_text(e.context), redact_text(e.statement)
    return e
