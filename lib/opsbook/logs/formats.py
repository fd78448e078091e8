"""The three formats PostgreSQL writes (csvlog, jsonlog, stderr) and the Supabase Logs Explorer export, each
read as a stream of Events from an open text file."""
from __future__ import annotations

import csv
import json
import re
from typing import Iterator, TextIO

from .csvfields import csv_dict_reader, csv_reader
from .event import Event
from .prefix import GENERIC, compile_prefix
from .redaction import redact_text
from .timeparse import BadTimestamp, parse_ts

# csvlog columns (PostgreSQL 13+: 24, 14+: 26); older servers write a prefix of these
CSV_COLUMNS = ("log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
               "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id", "transaction_id",
               "error_severity", "sql_state_code", "message", "detail", "hint", "internal_query",
               "internal_query_pos", "context", "query", "query_pos", "location", "application_name",
               "backend_type", "leader_pid", "query_id")
MIN_CSV_FIELDS = 22  # PostgreSQL 9.0-12 wrote 23 columns, 8.4 22
_ATTACH = {"DETAIL": "detail", "HINT": "hint", "CONTEXT": "context", "STATEMENT": "statement", "QUERY": "context",
           "LOCATION": None}


class Problems:
    """What could not be read, counted per (source, reason) with the first line number: bounded memory."""

    def __init__(self):
        self.items: dict[tuple[str, str], list] = {}
        self.left_out: dict[str, int] = {}  # events read but deliberately not yielded, by why (not a problem)
        self.said: dict[str, str] = {}  # how a file was read, when the reader must say so (not a problem)

    def add(self, source: str, reason: str, line: int | None = None) -> None:
        item = self.items.setdefault((source, reason), [0, line])
        item[0] += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self):
        for (source, reason), (count, line) in self.items.items():
            yield {"source": source, "reason": reason, "count": count, "first_line": line}

    def say(self, source: str, how: str) -> None:
        self.said[source] = how

    def leave_out(self, why: str) -> None:
        self.left_out[why] = self.left_out.get(why, 0) + 1

    def notes(self) -> list[str]:
        """What was left out on purpose, with how many: "12 event(s) of opsbook's own sessions ... left out"."""
        return [f"{n} event(s) of {why} left out" for why, n in self.left_out.items()]

    def lines(self) -> list[str]:
        return [f"{p['source']}: {p['reason']}" + (f" (line {p['first_line']}" if p["first_line"] else "")
                + (f", {p['count']} times)" if p["count"] > 1 else (")" if p["first_line"] else ""))
                for p in self]


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def read_csvlog(f: TextIO, source: str, problems: Problems, clock=parse_ts) -> Iterator[Event]:
    """csvlog: the csv module splits the fields (quoted multi-line statements included); a row it cannot split
    is counted and skipped. `clock` reads the timestamps (a timeparse.Clock knows log_timezone)."""
    reader = csv_reader(f)
    redact = redact_text
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            problems.add(source, f"malformed csvlog row ({e})", reader.line_num)
            continue
        if len(row) < 26:
            if len(row) < MIN_CSV_FIELDS:
                if row:
                    problems.add(source, "malformed csvlog row (too few fields)", reader.line_num)
                continue
            row += [""] * (26 - len(row))
        try:
            ts = clock(row[0])
        except BadTimestamp as e:
            problems.add(source, f"bad timestamp: {e}", reader.line_num)
            continue
        # by position, empty texts skipping redaction (Event keeps None for ""): a path run once per row
        client, pid, detail, context, statement = row[4], row[3], row[14], row[18], row[19]
        yield Event(ts, row[11], row[13], row[12], row[1], row[2], client.rsplit(":", 1)[0] if client else None,
                    row[22], int(pid) if pid.isdigit() and pid.isascii() else _int(pid),
                    redact(detail) if detail else None, row[15], redact(context) if context else None,
                    redact(statement) if statement else None, source, reader.line_num)


def read_jsonlog(f: TextIO, source: str, problems: Problems, clock=parse_ts) -> Iterator[Event]:
    """jsonlog (PostgreSQL 15+): one JSON object per line."""
    loads = json.loads
    redact = redact_text
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            d = loads(line)
            ts = clock(d["timestamp"])
        except BadTimestamp as e:
            problems.add(source, f"bad timestamp: {e}", n)
            continue
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: JSON nested 100,000 deep
            problems.add(source, "malformed jsonlog line", n)
            continue
        get = d.get
        yield Event(ts, get("error_severity", "LOG"), get("message", ""), get("state_code"), get("user"),
                    get("dbname"), get("remote_host"), get("application_name"), get("pid"), redact(get("detail")),
                    get("hint"), redact(get("context")), redact(get("statement")), source, n)


_STDERR_FIELDS = ("pid", "sqlstate", "user", "database", "application", "client")


def read_stderr(f: TextIO, source: str, problems: Problems, prefix: str | None, clock=parse_ts) -> Iterator[Event]:
    """stderr with a log_line_prefix (None: the generic pattern: a timestamp first, severity later).

    A tab starts a continuation of the previous line (PostgreSQL puts one after each newline of a message); so
    does a line starting with spaces that is no record (a tool along the way turned that tab into spaces);
    DETAIL/HINT/CONTEXT/STATEMENT lines attach to the event before them."""
    rx = compile_prefix(prefix) if prefix is not None else GENERIC
    match = rx.match
    index = rx.groupindex
    # a primary line's fields in one call: a field this prefix lacks reads the severity's group, then is None
    has_pid, has_state, has_user, has_db, has_app, has_client = (name in index for name in _STDERR_FIELDS)
    wanted = ("ts" if "ts" in index else "epoch", *(n if n in index else "severity" for n in _STDERR_FIELDS))
    unmatched = "line not in the log_line_prefix format" if prefix is not None \
        else "line without a timestamp and severity"
    attach = _ATTACH
    pending: Event | None = None
    field: str | None = None  # the attribute the last line wrote to, for its continuation lines
    text = ""  # that line's text, already set on `pending` when the field is its message
    more: list[str] | None = None  # with its continuation lines, when it has some
    for n, line in enumerate(f, 1):
        first = line[:1]
        if first == "\t":
            if pending is not None:
                if more is None:
                    more = [text]
                more.append(line[1:].rstrip("\n"))
            continue
        m = match(line)
        if m is None:
            if first == " " and pending is not None:
                if more is None:
                    more = [text]
                more.append(line.rstrip("\n"))
            elif line.strip():
                problems.add(source, unmatched, n)
            continue
        sev, new = m.group("severity", "message")
        if pending is not None and field is not None and (more is not None or field != "message"):
            _finish(pending, field, more or [text])
        text, more = new.rstrip("\n"), None
        if sev in attach:
            if pending is None:
                continue
            field = attach[sev]
            continue
        if pending is not None:
            yield pending
        try:
            stamp, pid, state, user, database, application, client = m.group(*wanted)
            ts = clock(stamp)
        except (BadTimestamp, IndexError, TypeError) as e:
            problems.add(source, f"bad timestamp: {e}", n)
            pending = None
            continue
        pending = Event(ts, sev, text, state if has_state else None, user if has_user else None,
                        database if has_db else None, client if has_client else None,
                        application if has_app else None, int(pid) if has_pid and pid else None, None, None, None,
                        None, source, n)
        field = "message"
    if pending is not None:
        _finish(pending, field, more or [text])
        yield pending


_REDACTED = frozenset(("detail", "context", "statement"))  # the attached texts that may carry SQL


def _finish(e: Event, field: str | None, parts: list[str]) -> None:
    if field is None:
        return
    text = parts[0] if len(parts) == 1 else "\n".join(parts)
    if field == "message":
        e.message = text
    else:
        setattr(e, field, redact_text(text) if field in _REDACTED else text)


# ---------------------------------------------------------------- Supabase Logs Explorer export
_SB_SEVERITY = re.compile(r"(?:^|\s)(LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG\d?):\s+(.*)", re.S)
_SB_FIELDS = {"user": ("user_name", "user"), "database": ("database_name", "dbname"),
              "sqlstate": ("sql_state_code", "state_code"), "application": ("application_name",),
              "detail": ("detail",), "hint": ("hint",), "context": ("context",), "statement": ("query", "statement"),
              "pid": ("process_id", "pid"), "severity": ("error_severity", "level")}


def _flatten(row: dict) -> dict:
    """Structured fields wherever the export put them: top level, `parsed`, `metadata[].parsed[]`,
    `log_attributes`."""
    out = dict(row)
    for key in ("log_attributes", "parsed"):
        if isinstance(row.get(key), dict):
            out.update({k: v for k, v in row[key].items() if k not in out})
    meta = row.get("metadata")
    if isinstance(meta, str) and meta.startswith("["):
        try:
            meta = json.loads(meta)
        except (ValueError, RecursionError):
            meta = None
    if isinstance(meta, list) and meta and isinstance(meta[0], dict):
        parsed = meta[0].get("parsed")
        if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
            out.update({k: v for k, v in parsed[0].items() if k not in out})
    return {k.split(".")[-1]: v for k, v in out.items()}


def supabase_event(row: dict, source: str, n: int) -> Event:
    """One exported row as an Event; `timestamp` is ISO 8601 UTC or epoch microseconds."""
    d = _flatten(row)
    raw = d.get("timestamp")
    if isinstance(raw, (int, float)) or (isinstance(raw, str) and raw.isdigit()):
        ts = parse_ts(str(float(raw) / 1e6 if float(raw) > 1e11 else float(raw)))
    else:
        ts = parse_ts(str(raw))

    def pick(name):
        for k in _SB_FIELDS[name]:
            if d.get(k) not in (None, ""):
                return d[k]
        return None

    message = str(d.get("event_message") or "")
    severity = pick("severity")
    m = _SB_SEVERITY.search(message)
    if m:  # the message is a whole stderr line: keep what follows its severity
        severity, message = severity or m.group(1), m.group(2)
    return Event(ts, str(severity or "LOG").upper(), message.strip(), sqlstate=pick("sqlstate"), user=pick("user"),
                 database=pick("database"), application=pick("application"), pid=_int(pick("pid")),
                 detail=redact_text(pick("detail")), hint=pick("hint"), context=redact_text(pick("context")),
                 statement=redact_text(pick("statement")), source=source, line=n)


def read_supabase(f: TextIO, source: str, problems: Problems, kind: str) -> Iterator[Event]:
    """A Logs Explorer download (CSV with a header row, or a JSON array); at most a few thousand rows, so they
    are sorted in memory (the export is newest first). A Cloud Logging export (Cloud SQL) as one JSON array is
    read as what it is."""
    from .cloud import CLOUDSQL_PREFIX, cloudsql_lines, kind_of  # noqa: PLC0415
    from .records import assemble  # noqa: PLC0415

    if kind == "csv":
        rows = csv_dict_reader(f)
    else:
        try:
            data = json.load(f)
        except (ValueError, RecursionError):
            problems.add(source, "malformed Supabase JSON export")
            return
        rows = data.get("result", data.get("data", [])) if isinstance(data, dict) else data
    if isinstance(rows, list) and rows and isinstance(rows[0], dict) and kind_of(rows[0]) == "cloudsql":
        # a Cloud Logging export as one JSON array (`gcloud logging read --format=json`), not Supabase's
        yield from sorted(assemble(cloudsql_lines(enumerate(rows, 1), source, problems), source, problems,
                                   CLOUDSQL_PREFIX, parse_ts), key=lambda e: e.ts)
        return
    events = []
    try:
        for n, row in enumerate(rows, 1):
            try:
                events.append(supabase_event(row, source, n))
            except (BadTimestamp, TypeError, ValueError, AttributeError):
                problems.add(source, "malformed Supabase export row", n)
    except csv.Error as e:
        problems.add(source, f"malformed Supabase CSV export ({e}); the rows before it were read")
    events.sort(key=lambda e: e.ts)
    yield from events


def reader_for(lf, clock=parse_ts):
    """The function reading this LogFile's format: f(text stream, source, problems) -> Events; `clock` reads
    the server's timestamps (a timeparse.Clock of its log_timezone; Supabase exports are in UTC). Besides
    PostgreSQL's own formats: syslog, Heroku logplex, Cloud SQL and CloudNativePG envelopes, PgBouncer's log."""
    from . import cloud, pgbouncer, syslog  # noqa: PLC0415 - each format family in its own module

    if lf.fmt == "syslog":
        written = syslog.written_at(lf.path)
        return lambda f, source, problems: syslog.read_syslog(f, source, problems, lf.prefix, clock, written)
    if lf.fmt == "logplex":
        return lambda f, source, problems: syslog.read_logplex(f, source, problems, lf.prefix, clock)
    if lf.fmt == "cloudsql":
        return lambda f, source, problems: cloud.read_cloudsql(f, source, problems, clock)
    if lf.fmt == "cnpg":
        return lambda f, source, problems: cloud.read_cnpg(f, source, problems, clock)
    if lf.fmt == "pgbouncer":
        return lambda f, source, problems: pgbouncer.read_pgbouncer(f, source, problems, clock)
    if lf.fmt == "csvlog":
        return lambda f, source, problems: read_csvlog(f, source, problems, clock)
    if lf.fmt == "jsonlog":
        return lambda f, source, problems: read_jsonlog(f, source, problems, clock)
    if lf.fmt == "stderr":
        return lambda f, source, problems: read_stderr(f, source, problems, lf.prefix, clock)
    if lf.fmt in ("supabase-csv", "supabase-json"):
        return lambda f, source, problems: read_supabase(f, source, problems, lf.fmt.split("-")[1])
    raise ValueError(f"unknown log format {lf.fmt!r}; known: csvlog, jsonlog, stderr, supabase-csv, supabase-json, "
                     "syslog, logplex, cloudsql, cnpg, pgbouncer")
