"""iter_events: the events of one or many log files in time order, streaming, with what was not readable."""
from __future__ import annotations

import gzip
import heapq
import itertools
import lzma
import zlib
from bisect import bisect_right
from collections import deque
from operator import attrgetter
from datetime import datetime, timedelta
from typing import Iterator

from . import seek
from .event import OWN_APPLICATION, Event, OwnSessions, classify
from .formats import Problems, reader_for
from .sources import FORMATS, LogFile, LogSourceError, choose, resolve, series, sniff
from .timeparse import BadTimestamp, Clock, parse_ts

REORDER = 512  # events held back to put lines a few milliseconds out of order (busy servers) back in order
_TS = attrgetter("ts")
SEARCHABLE = ("csvlog", "jsonlog", "stderr")  # formats whose big plain files are searched by time (seek.py)
# Leaving opsbook's own sessions out of a stderr log whose prefix has no %a follows each pid from its "connection
# authorized ... application_name=" line: a searched file is then read from this long before the window, which a
# runbook's sessions outlive rarely (a longer one, such as `watch`'s, is then not told apart: said in problems)
OWN_LOOKBACK = timedelta(hours=1)


def plan(path, *, fmt: str | None = None, prefix: str | None = None,
         problems: Problems | None = None) -> list[LogFile]:
    """The files iter_events will read, in order, each with its format; the rest go to `problems`."""
    if fmt is not None and fmt not in FORMATS:
        raise LogSourceError(f"unknown log format {fmt!r}; known: {', '.join(FORMATS)}")
    paths = resolve(path)
    files = [sniff(p, prefix=prefix) for p in paths]
    if fmt is not None:
        if len(files) == 1 and files[0].fmt != fmt:
            files = [sniff(paths[0], fmt=fmt, prefix=prefix)]
        for f in files:
            if f.fmt != fmt and f.fmt is not None:
                f.fmt, f.reason = None, f"not {fmt} (looks like {f.fmt})"
    keep, left = choose(files)
    if problems is not None:
        for f in left:
            problems.add(str(f.path), f.reason or "not read")
        for f in keep:
            if f.fmt == "stderr" and f.prefix is None:
                problems.add(str(f.path), "log_line_prefix not recognised: read timestamps, pids and severities "
                             "only (give prefix= or connect to read SHOW log_line_prefix)")
    return keep


def _when(v) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return parse_ts(str(v))


def iter_events(path, *, fmt: str | None = None, prefix: str | None = None, since=None, until=None,
                problems: Problems | None = None, log_timezone: str | None = None,
                own: bool = True) -> Iterator[Event]:
    """Events of a log file, folder or glob (plain or gzip'd; csvlog, jsonlog, stderr, Supabase export) in time
    order, classified (`.kind`), with `since <= ts <= until` when given. What cannot be read (malformed lines,
    a truncated gzip, a file that is not a log) is counted in `problems` (a Problems), never raised.

    `log_timezone`: the server's (SHOW log_timezone, or its configuration), to read zone abbreviations exactly;
    without it they are read from the abbreviation alone and an ambiguous one (IST, CST) is a problem.
    `own=False` leaves out the events of opsbook's own sessions (counted in `problems.left_out`): an incident's
    errors are the applications', not those of the tool looking at it.

    With `since`, a big plain csvlog, jsonlog or stderr file is read from the window's start, found by a binary
    search on its records' times (seek.py): a window of a 10 GB day reads that window; those events carry no
    line number. A compressed file is read from its start (`problems.said` tells which)."""
    problems = problems if problems is not None else Problems()
    since, until = _when(since), _when(until)
    try:
        if log_timezone:
            Clock(log_timezone)  # a bad zone name is bad input, said before any file is read
    except BadTimestamp as e:
        raise LogSourceError(str(e)) from None
    files = plan(path, fmt=fmt, prefix=prefix, problems=problems)

    def run(files_of_run: list[LogFile]) -> Iterator[Event]:
        # one clock per run of files read one after the other in time order (it tells the repeated autumn hour by
        # order); without a log_timezone a Clock would only call parse_ts. Leaving opsbook's sessions out follows
        # a pid from its connection line: a file whose lines do not name the application (a prefix without %a) is
        # then read from its start, where those lines are
        clock = Clock(log_timezone) if log_timezone else parse_ts
        return itertools.chain.from_iterable(
            _read(f, problems, since, clock, log_timezone=log_timezone,
                  lookback=None if own or f.fmt != "stderr" or (f.prefix is not None and "%a" in f.prefix)
                  else OWN_LOOKBACK)
            for f in files_of_run)

    # files that overlap in time (PostgreSQL's log beside PgBouncer's, two servers in one folder) are separate
    # runs merged by time; a rotated log is one run
    streams = [run(r) for r in series(files)] or [iter(())]
    stream = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_TS)
    if not own:
        stream = _without_own(stream, problems)
    # the last REORDER events, sorted by time then arrival: a line a few milliseconds out of order is put back
    # in place (a binary search); in order (nearly always) it is one comparison and an append, where a heap cost
    # a push and a pop
    held: deque[Event] = deque()
    append, popleft = held.append, held.popleft
    for e in stream:
        ts = e.ts
        if since is not None and ts < since:
            continue
        if held and ts < held[-1].ts:
            held.insert(bisect_right(held, ts, key=_TS), e)  # after those of the same time: arrival order
        else:
            append(e)
        if len(held) > REORDER:
            ev = popleft()
            if until is not None and ev.ts > until:
                held.clear()
                break
            yield classify(ev)
    while held:
        ev = popleft()
        if until is not None and ev.ts > until:
            break
        yield classify(ev)


def _without_own(stream, problems: Problems) -> Iterator[Event]:
    is_own = OwnSessions()
    why = f"opsbook's own sessions (application_name {OWN_APPLICATION})"
    for e in stream:
        if e.kind == "other" and e.message.startswith(("connection authorized", "disconnection: ")):
            classify(e)  # is_own follows a pid from its connection line to its disconnection
        if is_own(e):
            problems.leave_out(why)
            continue
        yield e


def _read(lf: LogFile, problems: Problems, since, clock=parse_ts, *, lookback: timedelta | None = None,
          log_timezone: str | None = None) -> Iterator[Event]:
    """The events of one file; with `since`, a big plain file is read from the window's start (seek.window_start;
    `lookback` earlier when given): its events then carry no line number (the lines before were not counted)."""
    source = str(lf.path)
    if since is not None:
        try:
            if lf.path.stat().st_mtime < since.timestamp() - 1:  # a rotated file finished before the window
                return
        except OSError:
            pass
    try:
        with _open(lf) as f:
            read = reader_for(lf, clock)
            start = 0
            if since is not None and lf.fmt in SEARCHABLE:
                fd = seek.plain_fd(f)
                if fd is None:
                    problems.say(source, "compressed: read from its start to reach the window (a plain file is "
                                         "searched by time)")
                else:
                    start = seek.window_start(fd, lf.fmt, lf.prefix, since - (lookback or timedelta(0)),
                                              log_timezone)
                    if start and lookback:
                        problems.say(source, f"read from {lookback} before the window to tell opsbook's own "
                                             "sessions by their connection lines (log_line_prefix has no %a); one "
                                             "that connected earlier is not told apart")
            if not start:
                yield from read(f, source, problems)
                return
            f.seek(start)
            for e in read(f, source, _Unnumbered(problems)):
                e.line = None
                yield e
    except (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as e:
        problems.add(source, f"truncated or corrupt compressed file ({e}); events before the damage were read")
    except OSError as e:
        problems.add(source, f"unreadable: {e.strerror or e}")


class _Unnumbered:
    """Problems for a file read from the middle: line numbers counted from there would mislead, so none."""

    def __init__(self, problems: Problems):
        self.problems = problems

    def add(self, source: str, reason: str, line: int | None = None) -> None:
        self.problems.add(source, reason)


def _open(lf: LogFile):
    from .sources import open_text  # noqa: PLC0415

    return open_text(lf.path)


def count_kinds(events) -> dict[str, int]:
    """{kind: number of events}."""
    out: dict[str, int] = {}
    for e in events:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out
