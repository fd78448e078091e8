"""iter_events: the events of one or many log files in time order, streaming, with what was not readable."""
from __future__ import annotations

import gzip
import heapq
import itertools
import zlib
from datetime import datetime
from typing import Iterator

from .event import OWN_APPLICATION, Event, OwnSessions, classify
from .formats import Problems, reader_for
from .sources import FORMATS, LogFile, LogSourceError, choose, resolve, sniff
from .timeparse import BadTimestamp, Clock, parse_ts

REORDER = 512  # events held back to put lines a few milliseconds out of order (busy servers) back in order


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
    errors are the applications', not those of the tool looking at it."""
    problems = problems if problems is not None else Problems()
    since, until = _when(since), _when(until)
    try:
        clock = Clock(log_timezone)  # one for all the files: they are read in time order
    except BadTimestamp as e:
        raise LogSourceError(str(e)) from None
    files = plan(path, fmt=fmt, prefix=prefix, problems=problems)
    stream = itertools.chain.from_iterable(_read(f, problems, since, clock) for f in files)
    if not own:
        stream = _without_own(stream, problems)
    heap: list = []
    seq = itertools.count()
    push, pop = heapq.heappush, heapq.heappop
    for e in stream:
        ts = e.ts
        if since is not None and ts < since:
            continue
        push(heap, (ts, next(seq), e))
        if len(heap) > REORDER:
            ev = pop(heap)[2]
            if until is not None and ev.ts > until:
                heap.clear()
                break
            yield classify(ev)
    while heap:
        ev = pop(heap)[2]
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


def _read(lf: LogFile, problems: Problems, since, clock=parse_ts) -> Iterator[Event]:
    source = str(lf.path)
    if since is not None:
        try:
            if lf.path.stat().st_mtime < since.timestamp() - 1:  # a rotated file finished before the window
                return
        except OSError:
            pass
    try:
        with _open(lf) as f:
            yield from reader_for(lf, clock)(f, source, problems)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        problems.add(source, f"truncated or corrupt gzip ({e}); events before the damage were read")
    except OSError as e:
        problems.add(source, f"unreadable: {e.strerror or e}")


def _open(lf: LogFile):
    from .sources import open_text  # noqa: PLC0415

    return open_text(lf.path)


def count_kinds(events) -> dict[str, int]:
    """{kind: number of events}."""
    out: dict[str, int] = {}
    for e in events:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out
