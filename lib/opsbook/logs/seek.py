"""Where a time window starts inside a big plain log file: a binary search on the times of its records.

A post-mortem of one hour in a 10 GB day reads that hour, not the day: the reader starts at the last record
found to be older than the window (less MARGIN), so at most a few blocks and MARGIN of lines before it are read.
A record start is what the reader itself takes for one: a stderr line its log_line_prefix pattern matches (not
a DETAIL/STATEMENT... line, which belongs to the record before it), any jsonlog line, and for csvlog a line
start outside every quoted field, told by reading the bytes after it both ways (at a record start, or inside a
quoted field that may hold newlines and whole fake rows) until PostgreSQL's quoting rules refute one reading.
Compressed files cannot be searched: they are read from their start."""
from __future__ import annotations

import io
import json
import os
from datetime import datetime, timedelta
from typing import Callable

from .prefix import GENERIC, compile_prefix
from .timeparse import BadTimestamp, Clock, parse_ts

MIN_BYTES = 4 << 20  # a smaller file is read whole: a search saves nothing there
MARGIN = timedelta(minutes=1)  # read from this long before the window: lines out of order by ms (or s) are kept
BLOCK = 64 << 10  # the search stops when its bounds are this close
PROBE_BYTES = 4 << 20  # how far past a probe point a record start is looked for (a 1 MB line, a long csv field)
CSV_DECIDE_BYTES = 16 << 20  # how far the two readings of a csv stretch are followed before giving up
_STEP = 64 << 10
_ATTACH = ("DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION")  # lines that belong to the record before
_QUOTE, _COMMA, _LF, _CR = 0x22, 0x2C, 0x0A, 0x0D

Probe = Callable[[int, int, int], "tuple[int, datetime] | None"]


def plain_fd(f) -> int | None:
    """The descriptor of the plain file under a text stream from sources.open_text; None for a compressed one."""
    raw = getattr(getattr(f, "buffer", None), "raw", None)
    return raw.fileno() if isinstance(raw, io.FileIO) else None


def window_start(fd: int, fmt: str, prefix: str | None, since: datetime, log_timezone: str | None = None) -> int:
    """The byte offset to read the plain file `fd` from for the events at or after `since`: a record start
    older than since - MARGIN (0: from the start). Nothing is read from the file for a small one."""
    size = os.fstat(fd).st_size
    if size < MIN_BYTES:
        return 0
    probe = _prober(fd, fmt, prefix, log_timezone)
    if probe is None:
        return 0
    target = since - MARGIN
    lo, hi = 0, size  # lo: 0 or a record start older than target; records from hi on are not
    while hi - lo > BLOCK:
        mid = (lo + hi) // 2
        found = probe(mid, hi, PROBE_BYTES)
        if found is not None and found[1] < target:
            lo = found[0]
        else:
            hi = mid
    return lo


def _prober(fd: int, fmt: str, prefix: str | None, log_timezone: str | None) -> Probe | None:
    def clock(text: str) -> datetime:
        # a fresh Clock for each probe: the reader's own one follows the lines in order
        return Clock(log_timezone)(text) if log_timezone else parse_ts(text)

    if fmt == "stderr":
        rx = compile_prefix(prefix) if prefix is not None else GENERIC
        ts_group = "ts" if "ts" in rx.groupindex else "epoch"

        def stderr(pos, end, limit):
            for off, line in _lines(fd, pos, end, limit):
                m = rx.match(line.decode("utf-8", "replace"))
                if m is not None and m.group("severity") not in _ATTACH:
                    try:
                        return off, clock(m.group(ts_group))
                    except (BadTimestamp, IndexError, TypeError):
                        continue
            return None
        return stderr
    if fmt == "jsonlog":
        def jsonlog(pos, end, limit):
            for off, line in _lines(fd, pos, end, limit):
                try:
                    return off, clock(json.loads(line)["timestamp"])
                except (BadTimestamp, ValueError, KeyError, TypeError):
                    continue
            return None
        return jsonlog
    if fmt == "csvlog":
        def csvlog(pos, end, limit):
            start = csv_record_start(fd, pos, min(end, pos + limit))
            if start is None:
                return None
            head = os.pread(fd, 256, start)
            comma = head.find(b",")
            if comma < 0:
                return None
            try:  # PostgreSQL leaves the time unquoted; a csv writer quoting every field does not
                return start, clock(head[:comma].decode("utf-8", "replace").strip('"'))
            except BadTimestamp:
                return None
        return csvlog
    return None


def _lines(fd: int, pos: int, end: int, limit: int):
    """(offset, bytes) of the whole lines that start after `pos` (at it when 0) and before `end`, reading at
    most `limit` bytes from pos."""
    stop = min(end, pos + limit)
    buf, base, i = b"", pos, 0  # buf holds the file's bytes from `base`; i: where the next line starts in it
    whole = pos == 0  # else the bytes before the first newline end a line begun before pos
    while True:
        nl = buf.find(b"\n", i)
        while nl >= 0:
            if whole:
                if base + i >= end:
                    return
                yield base + i, buf[i:nl]
            whole, i = True, nl + 1
            nl = buf.find(b"\n", i)
        if base + len(buf) >= stop:
            return
        chunk = os.pread(fd, min(_STEP, stop - base - len(buf)), base + len(buf))
        if not chunk:
            return
        buf, base, i = buf[i:] + chunk, base + i, 0


def csv_record_start(fd: int, pos: int, end: int) -> int | None:
    """The first csvlog record start at or after byte `pos` (after its line's end, unless 0) and before `end`
    (None: none there, or the bytes do not say within CSV_DECIDE_BYTES): the line start is read both ways, as
    a record start and as the inside of a quoted field, until PostgreSQL's quoting refutes one (a field opens
    with a quote only after a comma or a line break; inside one, a quote is doubled or closes it before a comma
    or a line break)."""
    before = max(pos - 1, 0)  # the byte before: a line break, when pos starts a line
    size = BLOCK
    while True:
        buf = os.pread(fd, size, before)
        whole = len(buf) < size  # up to the end of the file
        line = 0 if pos == 0 else buf.find(b"\n") + 1
        if line:
            out_alive, out_start = _walk(buf, line, inside=False)
            in_alive, in_start = _walk(buf, line, inside=True)
            if out_alive != in_alive:  # one reading refuted: the other is the file's
                start = out_start if out_alive else in_start
                if start is not None:
                    return before + start if before + start < end else None
            elif not out_alive:
                return None  # both refuted: not the csv PostgreSQL writes
        elif pos == 0:
            return 0
        if whole or size >= CSV_DECIDE_BYTES or before + line >= end:
            return None
        size *= 4


def _walk(buf: bytes, i: int, *, inside: bool) -> tuple[bool, int | None]:
    """Read buf from i (a line start) under one hypothesis: (whether the rules hold to the end of buf, the first
    record start after i under it: i itself when not inside)."""
    n = len(buf)
    first = None if inside else i
    find = buf.find
    while i < n:
        q = find(b'"', i)
        if not inside:
            if q < 0:
                if first is None:
                    nl = find(b"\n", i)
                    first = nl + 1 if 0 <= nl < n - 1 else None
                return True, first
            if first is None:
                nl = find(b"\n", i, q)
                if nl >= 0:
                    first = nl + 1
            if q > 0 and buf[q - 1] not in (_COMMA, _LF):
                return False, first
            inside, i = True, q + 1
        else:
            if q < 0 or q + 1 >= n:
                return True, first  # still inside, or undecided at the edge
            c = buf[q + 1]
            if c == _QUOTE:
                i = q + 2
                continue
            if c not in (_COMMA, _LF, _CR):
                return False, first
            inside, i = False, q + 1
    return True, first
