"""PostgreSQL's log through syslog (the classic "Mon DD HH:MM:SS host postgres[pid]: [n-m] ..." and the ISO 8601
timestamp that rsyslog writes) and Heroku's logplex ("ISO app[postgres.pid]: [DATABASE] [n-m] ..."): PostgreSQL
numbers each message n and each of its lines m, so the lines m > 1 are put back together before reading."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, TextIO

from .event import Event
from .records import ATTACH, MAX_RECORD_CHARS, Inner, assemble

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}
# rsyslog's traditional format: no year, no zone (the host's local time)
CLASSIC = re.compile(r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)(?: \S+)?? (?P<host>\S+) "
                     r"(?P<ident>[^\s\[]+)\[(?P<pid>\d+)\]:(?: \[[^\]]*\])? \[(?P<seq>\d+)(?:-(?P<part>\d+))?\] ?"
                     r"(?P<text>.*)", re.S)
# RFC 3339 timestamps (rsyslog's RSYSLOG_FileFormat, syslog-ng's ISO), zone included
ISO = re.compile(r"(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) "
                 r"(?:\S+ )??(?P<ident>[^\s\[]+)\[(?P<pid>\d+)\]:(?: \[[^\]]*\])? \[(?P<seq>\d+)(?:-(?P<part>\d+))?\] ?"
                 r"(?P<text>.*)", re.S)
LOGPLEX = re.compile(r"(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) +(?:\S+ +)?"
                     r"app\[postgres\.(?P<pid>\d+)\]:? +\[(?P<database>[^\]]+)\] +\[(?P<seq>\d+)-(?P<part>\d+)\] +"
                     r"(?P<text>.*)", re.S)
# any program's syslog line: told from a line that is not syslog at all
ANY = re.compile(r"(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ [^\s\[:]+(?:\[\d+\])?:")
OTHER = "other programs' syslog lines"
# rsyslog writes control characters in octal: a tab is #011, a newline #012 (a whole message in one syslog line,
# PostgreSQL's syslog_split_messages = off)
_SYSLOG_TAB, _SYSLOG_NEWLINE = "#011", "#012"


def looks_like(line: str) -> str | None:
    """"syslog" or "logplex" when this line is one PostgreSQL wrote through them."""
    if LOGPLEX.match(line):
        return "logplex"
    m = CLASSIC.match(line) or ISO.match(line)
    return "syslog" if m else None


def written_at(path: Path) -> datetime:
    """When a classic syslog file was last written: its lines (which carry no year) are the year before it."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    except OSError:
        return datetime.now(timezone.utc)


def read_syslog(f: TextIO, source: str, problems, prefix: str | None, clock, written: datetime) -> Iterator[Event]:
    """Events of a syslog file. The classic timestamp has no zone and no year: it is read in the clock's
    log_timezone when known, else as UTC (said in `problems`), in the year that puts it at most a day after the
    file was last written (a file from December to January is two years); a prefix with %t/%m gives the exact
    time instead."""
    tz = getattr(clock, "tz", None) or timezone.utc
    latest = written + timedelta(days=1)
    said = []

    def when(m) -> datetime | None:
        if m.groupdict().get("iso"):
            return _iso(m.group("iso"))
        if not said and getattr(clock, "tz", None) is None:
            said.append(True)
            problems.add(source, "classic syslog times carry no zone: read as UTC where the log_line_prefix has no "
                         "%m/%t (give log_timezone)")
        mon = _MONTHS.get(m.group("mon"))
        if mon is None:
            return None
        for year in (latest.year, latest.year - 1):
            try:
                wall = datetime(year, mon, int(m.group("day")), *map(int, m.group("hms").split(":")))
            except ValueError:  # 29 February of a year without it
                continue
            ts = wall.replace(tzinfo=tz).astimezone(timezone.utc)
            if ts <= latest:
                return ts
        return None

    yield from assemble(_joined(f, source, problems, (CLASSIC, ISO), when, prefix), source, problems, prefix, clock)


def read_logplex(f: TextIO, source: str, problems, prefix: str | None, clock) -> Iterator[Event]:
    """Events of `heroku logs -p postgres` output; the [DATABASE] tag (its attachment colour) is the database."""
    yield from assemble(_joined(f, source, problems, (LOGPLEX,), lambda m: _iso(m.group("iso")), prefix),
                        source, problems, prefix, clock)


def _iso(text: str) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _joined(f, source, problems, patterns, when, prefix):
    """(line number, text of one PostgreSQL line, time, pid, fields) with the parts of a message put back
    together; other programs' lines in the same file are skipped.

    PostgreSQL numbers each message [n-m]: only its first part (m = 1) carries the primary severity; a later part
    is a line of the same message (a tab, or a DETAIL/HINT/CONTEXT/STATEMENT line) or the rest of a line cut at
    900 bytes. So a later part never starts an event (its text is the user's: a query cut where it says "PANIC:  "),
    a part whose first part is not right before it (another session's line came between) is left out, and a
    message stops growing at MAX_RECORD_CHARS."""
    inner = Inner(prefix)

    def attached(text: str) -> bool:  # the start of a DETAIL/HINT/... line, as assemble() will read it
        d = inner.match(text)
        return d is not None and d["severity"] in ATTACH

    current = None  # [n, parts, ts, pid, extra, (pid, seq), size]
    for n, line in enumerate(f, 1):
        line = line.rstrip("\n")
        m = None
        for rx in patterns:
            m = rx.match(line)
            if m:
                break
        if m is None:
            if ANY.match(line):
                problems.leave_out(OTHER)
            elif line.strip():
                problems.add(source, "line not in the syslog format", n)
            continue
        d = m.groupdict()
        if d.get("ident") == "pgbouncer":  # PgBouncer logging to the same syslog: read its own log instead
            problems.leave_out(OTHER)
            continue
        text = m.group("text")
        key = (d["pid"], d["seq"])
        part = int(d.get("part") or 1)
        if part > 1:
            if current is None or current[5] != key:
                problems.add(source, "part of a syslog message whose first part is not before it", n)
                continue
            current[6] += len(text)
            if current[6] > MAX_RECORD_CHARS:
                if current[6] - len(text) <= MAX_RECORD_CHARS:
                    problems.add(source, f"message over {MAX_RECORD_CHARS} characters: cut", n)
                continue
            if text.startswith((_SYSLOG_TAB, "\t")) or attached(_plain(text)):
                current[1].append("\n")  # a line of its own in the message
            current[1].append(text)  # else: a line longer than PostgreSQL's syslog limit goes on in this part
            continue
        if current is not None:
            yield from _pieces(current, attached)
        try:
            ts = when(m)
        except ValueError:
            ts = None
        extra = {"database": d["database"]} if d.get("database") else {}
        current = [n, [text], ts, int(d["pid"]), extra, key, len(text)]
    if current is not None:
        yield from _pieces(current, attached)


def _plain(text: str) -> str:
    return text.replace(_SYSLOG_TAB, "\t")


def _pieces(current, attached):
    """The lines of one message. rsyslog writes a newline as #012 (syslog_split_messages = off) but leaves a "#012"
    the user typed as it is: a newline of PostgreSQL's is followed by a tab or by a DETAIL/HINT/... line, so any
    other "#012" is the user's text."""
    n, parts, ts, pid, extra = current[:5]
    lines: list[str] = []
    for chunk in "".join(parts).split("\n"):
        pieces = chunk.split(_SYSLOG_NEWLINE)
        lines.append(pieces[0])
        for piece in pieces[1:]:
            if piece.startswith((_SYSLOG_TAB, "\t")) or attached(_plain(piece)):
                lines.append(piece)
            else:
                lines[-1] += _SYSLOG_NEWLINE + piece
    for i, piece in enumerate(lines):
        yield n, _plain(piece), ts, pid, {**extra, "continued": True} if i else extra
