"""One log event and how its message is classified into a kind with its numbers."""
from __future__ import annotations

import re
from datetime import datetime

from .redaction import redact_text

KINDS = ("error", "fatal", "panic", "deadlock", "lock_wait", "lock_acquired", "statement_timeout",
         "too_many_connections", "authentication_failed", "temp_file", "checkpoint", "autovacuum", "autoanalyze",
         "connection", "disconnection", "slow_statement", "other")


class Event:
    """A PostgreSQL log event: the primary line with its DETAIL/HINT/CONTEXT/STATEMENT attached.

    Times are aware datetimes; texts that may carry SQL (message, detail, statement, context) are redacted.
    Kind-specific numbers are None when they do not apply."""

    __slots__ = ("ts", "kind", "severity", "sqlstate", "user", "database", "client", "application", "pid",
                 "message", "detail", "hint", "context", "statement", "duration_ms", "size_bytes", "session_s",
                 "buffers", "relation", "lock_type", "blocking_pids", "statements", "source", "line")

    # positional or keyword: the readers pass every field by position (a keyword call costs twice as much, on a
    # path run once per log line)
    def __init__(self, ts: datetime, severity: str, message: str, sqlstate: str | None = None,
                 user: str | None = None, database: str | None = None, client: str | None = None,
                 application: str | None = None, pid: int | None = None, detail: str | None = None,
                 hint: str | None = None, context: str | None = None, statement: str | None = None,
                 source: str | None = None, line: int | None = None):
        self.ts = ts
        self.severity = severity
        self.message = message
        self.sqlstate = sqlstate or None
        self.user = user or None
        self.database = database or None
        self.client = client or None
        self.application = application if application and application != "[unknown]" else None
        self.pid = pid
        self.detail = detail or None
        self.hint = hint or None
        self.context = context or None
        self.statement = statement or None
        self.source = source
        self.line = line
        self.kind = "other"
        self.duration_ms = self.size_bytes = self.session_s = self.buffers = None
        self.relation = self.lock_type = None
        self.blocking_pids: tuple[int, ...] = ()
        self.statements: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return f"Event({self.ts.isoformat()} {self.kind} pid={self.pid} {self.message[:60]!r})"


OWN_APPLICATION = "opsbook"  # the application_name of every opsbook session (db.py)
_APP_IN_CONNECTION = re.compile(r"connection authorized: .*?\bapplication_name=(\S+)")


class OwnSessions:
    """Which events opsbook's own sessions wrote: application_name opsbook (csvlog, jsonlog, a prefix with %a),
    or, for a prefix without %a, a pid whose "connection authorized" line named it (log_connections), until its
    disconnection. Fed the events in time order."""

    def __init__(self):
        self.pids: set[int] = set()

    def __call__(self, e: Event) -> bool:
        pid = e.pid
        if e.kind == "connection" and pid is not None:
            m = _APP_IN_CONNECTION.search(e.message)
            if m and m.group(1).rstrip(",") == OWN_APPLICATION:
                self.pids.add(pid)
            else:
                self.pids.discard(pid)  # a reused pid is someone else's now
        own = e.application == OWN_APPLICATION or (e.application is None and pid in self.pids)
        if e.kind == "disconnection":
            self.pids.discard(pid)
        return own


_FLOAT = r"([0-9]+(?:\.[0-9]+)?)"
# parse and bind phases of the extended protocol are not executions (pgbadger counts the execute only): they stay
# "other"
DURATION = re.compile(r"duration: " + _FLOAT + r" ms(?:\s+(?:statement|execute [^:]*|plan):\s*(.*))?\Z", re.S)
LOCK_WAIT = re.compile(r"process (\d+) (still waiting for|acquired) (\w+) on (.+?) after " + _FLOAT + " ms")
HOLDERS = re.compile(r"Process(?:es)? holding the lock: ([0-9, ]+)\.")
RELATION = re.compile(r'relation "([^"]+)"')
TEMP = re.compile(r'temporary file: path "[^"]*", size (\d+)')
CHECKPOINT = re.compile(r"(?:checkpoint|restartpoint) complete: wrote (\d+) buffers.*?total=" + _FLOAT + " s", re.S)
AUTOVAC = re.compile(r'automatic (aggressive )?(vacuum|analyze) (?:to prevent wraparound )?of table "([^"]+)"')
ELAPSED = re.compile(r"elapsed: " + _FLOAT + " s")
SESSION = re.compile(r"disconnection: session time: (\d+):(\d+):" + _FLOAT)
DEADLOCK_STMT = re.compile(r"^[ \t]*Process (\d+): (.*)$", re.M)  # not \s*: it crossed lines, quadratic
DEADLOCK_PIDS = re.compile(r"blocked by process (\d+)")
AUTH_STATES = {"28P01", "28000"}


def classify(e: Event) -> Event:
    """Set e.kind and its numbers from the message, severity and SQLSTATE."""
    m = e.message = redact_text(e.message)  # "statement: ...", "duration: ... statement: ..." carry SQL
    sev, state = e.severity, e.sqlstate
    if sev in ("ERROR", "FATAL", "PANIC"):
        if state == "40P01" or m.startswith("deadlock detected"):
            e.kind = "deadlock"
            d = e.detail or ""
            e.statements = tuple(redact_text(s) for _, s in DEADLOCK_STMT.findall(d))
            e.blocking_pids = tuple(int(p) for p in DEADLOCK_PIDS.findall(d))
        elif m.startswith("canceling statement due to statement timeout"):
            e.kind, e.sqlstate = "statement_timeout", state or "57014"
        elif state == "53300" or m.startswith(("sorry, too many clients", "remaining connection slots are reserved",
                                                 "too many connections for")):
            e.kind, e.sqlstate = "too_many_connections", state or "53300"
        elif state in AUTH_STATES or "authentication failed for user" in m or m.startswith("no pg_hba.conf entry"):
            e.kind = "authentication_failed"
        elif sev == "ERROR":
            e.kind = "error"
        elif sev == "FATAL":
            e.kind = "fatal"
        else:
            e.kind = "panic"
        return e
    # the messages below begin with distinct words: the first letter picks the one or two to try
    c = m[:1]
    if c == "d":
        if m.startswith("duration: "):
            x = DURATION.match(m)
            if x:
                ms, statement = x.group(1, 2)
                e.kind, e.duration_ms = "slow_statement", float(ms)
                if statement:
                    e.statement = statement  # a part of the message, redacted above
        elif m.startswith("disconnection: "):
            e.kind = "disconnection"
            x = SESSION.match(m)
            if x:
                h, mi, sec = x.group(1, 2, 3)
                e.session_s = int(h) * 3600 + int(mi) * 60 + float(sec)
        return e
    if c == "c":
        if m.startswith("connection authorized"):
            e.kind = "connection"
        elif m.startswith("checkpoint complete"):
            _checkpoint(e, m)
        return e
    if c == "s":
        if m.startswith("statement: "):
            e.statement = m[11:]
        return e
    if c == "p":
        if m.startswith("process ") and " on " in m:
            x = LOCK_WAIT.match(m)
            if x:
                e.kind = "lock_wait" if x.group(2) != "acquired" else "lock_acquired"
                e.lock_type, e.duration_ms = x.group(3), float(x.group(5))
                h = HOLDERS.search(e.detail or "")
                if h:
                    e.blocking_pids = tuple(int(p) for p in h.group(1).replace(" ", "").split(",") if p)
                r = RELATION.search(e.context or "") or RELATION.search(x.group(4))
                e.relation = r.group(1) if r else None
        return e
    if c == "t":
        if m.startswith("temporary file: "):
            x = TEMP.match(m)
            if x:
                e.kind, e.size_bytes = "temp_file", int(x.group(1))
        return e
    if c == "r":
        if m.startswith("restartpoint complete"):
            _checkpoint(e, m)
        return e
    if c == "a" and m.startswith("automatic "):
        x = AUTOVAC.match(m)
        if x:
            e.kind = "autovacuum" if x.group(2) == "vacuum" else "autoanalyze"
            e.relation = x.group(3)
            t = ELAPSED.search(m)
            if t:
                e.duration_ms = float(t.group(1)) * 1000
    return e


def _checkpoint(e: Event, m: str) -> None:
    e.kind = "checkpoint"
    x = CHECKPOINT.match(m)
    if x:
        e.buffers, e.duration_ms = int(x.group(1)), float(x.group(2)) * 1000
    return e
