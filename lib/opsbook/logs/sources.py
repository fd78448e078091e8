"""Which files a path, folder or glob names, how to open them (plain or gzip) and which format each holds."""
from __future__ import annotations

import csv
import errno
import glob
import gzip
import io
import json
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

from .csvfields import csv_reader
from .prefix import GENERIC, compile_prefix, detect_prefix
from .timeparse import looks_like_ts

FORMATS = ("csvlog", "jsonlog", "stderr", "supabase-csv", "supabase-json")
PREFERENCE = {"csvlog": 0, "jsonlog": 1, "supabase-json": 2, "supabase-csv": 2, "stderr": 3}
SNIFF_LINES = 200


class LogSourceError(ValueError):
    """The log path names nothing readable."""


@dataclass
class LogFile:
    path: Path
    fmt: str | None = None  # None: not a log
    prefix: str | None = None  # stderr: the detected or given log_line_prefix (None with fmt stderr: generic)
    first_ts: float | None = None
    reason: str | None = None  # why it is not read


def resolve(spec) -> list[Path]:
    """The files named by a file, a folder (its regular files, not recursing) or a glob; several may be given.
    A FIFO, socket or device is refused without being opened (reading one would block or never end)."""
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    out: list[Path] = []
    for s in specs:
        p = Path(os.path.expanduser(str(s)))
        if p.is_dir():
            out.extend(sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")))
        elif p.is_file():
            out.append(p)
        elif p.exists():
            raise LogSourceError(f"log path {s} is not a regular file")
        elif glob.has_magic(str(p)):
            out.extend(sorted(Path(g) for g in glob.glob(str(p)) if Path(g).is_file()))
        else:
            raise LogSourceError(f"log path {s} does not exist")
    if not out:
        raise LogSourceError(f"log path {spec} names no file")
    return out


def open_text(path: Path):
    """A text stream over a plain or gzip'd regular file; undecodable bytes are replaced, never fatal.

    Lines end at a newline only: PostgreSQL writes carriage returns from queries and role names raw, so a
    carriage return never starts a record. The file is opened without blocking and checked to be a regular
    file on the open descriptor (it may have been swapped for a FIFO since it was listed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        os.set_blocking(fd, True)
        raw = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    if raw.peek(2)[:2] == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        gz.myfileobj = raw  # GzipFile closes only a file it opened itself: hand this one over
        return io.TextIOWrapper(gz, encoding="utf-8", errors="replace", newline="\n")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="\n")


def _head(path: Path) -> list[str]:
    lines: list[str] = []
    try:
        with open_text(path) as f:
            for _ in range(SNIFF_LINES):
                line = f.readline()
                if not line:
                    break
                lines.append(line)
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile):
        pass  # a truncated gzip still shows its first lines; what follows is reported while reading
    return lines


def sniff(path: Path, fmt: str | None = None, prefix: str | None = None) -> LogFile:
    """The format of one file, by its first lines (or as given)."""
    lines = _head(path)
    lf = LogFile(path)
    if not lines:
        lf.reason = "empty or unreadable"
        return lf
    if "\x00" in "".join(lines[:5]):
        lf.reason = "not a PostgreSQL log (binary content)"
        return lf
    first = lines[0].lstrip("\ufeff")
    if fmt:
        lf.fmt = fmt
    elif first.lstrip().startswith("["):
        lf.fmt = "supabase-json"
    elif first.startswith("{"):
        try:
            d = json.loads(first)
            lf.fmt = "jsonlog" if "error_severity" in d or "message" in d else "supabase-json"
        except ValueError:
            lf.fmt = "supabase-json"  # a pretty-printed export
    else:
        try:  # the first row may span lines (a quoted multi-line statement)
            row = next(csv_reader(io.StringIO("".join(lines).lstrip("\ufeff"))), [])
        except csv.Error:
            row = []
        if "event_message" in row and "timestamp" in row:
            lf.fmt = "supabase-csv"
        elif len(row) >= 22 and _is_ts(row[0]):
            lf.fmt = "csvlog"
        else:
            lf.fmt = "stderr"
    if lf.fmt == "stderr":
        lf.prefix = prefix if prefix is not None else detect_prefix(lines)
        primary = [ln for ln in lines if ln.strip() and not ln.startswith("\t")]
        rx = compile_prefix(lf.prefix) if lf.prefix is not None else GENERIC
        if sum(1 for ln in primary if rx.match(ln) or GENERIC.match(ln)) * 2 < len(primary):
            lf.fmt, lf.reason = None, "not a PostgreSQL log (no line has a timestamp and a severity)"
            return lf
    lf.first_ts = _first_ts(lf, lines)
    return lf


def _is_ts(text: str) -> bool:
    # any zone: a csvlog in CEST or IST is still a csvlog (its timestamps are read, or reported, later)
    return len(text) >= 19 and looks_like_ts(text)


def _first_ts(lf: LogFile, lines: list[str]) -> float | None:
    from .formats import Problems, reader_for  # noqa: PLC0415

    try:
        for e in reader_for(lf)(io.StringIO("".join(lines[:50])), str(lf.path), Problems()):
            return e.ts.timestamp()
    except Exception:  # noqa: BLE001 - only an ordering hint
        return None
    return None


def choose(files: list[LogFile]) -> tuple[list[LogFile], list[LogFile]]:
    """The files to read, and those left out: when one folder holds the same log in several formats (csvlog,
    jsonlog and stderr at once), only the most structured format is read, so no event counts twice."""
    logs = [f for f in files if f.fmt]
    if not logs:
        return [], files
    best = min(PREFERENCE[f.fmt] for f in logs)
    keep = [f for f in logs if PREFERENCE[f.fmt] == best]
    for f in logs:
        if f not in keep:
            f.reason = f"same log in another format ({f.fmt}); read the {keep[0].fmt} files instead"
    keep.sort(key=lambda f: (f.first_ts is None, f.first_ts or 0, f.path.name))
    return keep, [f for f in files if f not in keep]
