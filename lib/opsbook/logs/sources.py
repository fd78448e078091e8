"""Which files a path, folder or glob names, how to open them (plain, gzip, bzip2 or xz) and which format each
holds."""
from __future__ import annotations

import bz2
import csv
import errno
import glob
import gzip
import heapq
import io
import json
import lzma
import os
import re
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

from . import pgbouncer, syslog
from .cloud import kind_of
from .csvfields import csv_reader
from .prefix import GENERIC, compile_prefix, detect_prefix
from .timeparse import looks_like_ts

FORMATS = ("csvlog", "jsonlog", "stderr", "supabase-csv", "supabase-json", "syslog", "logplex", "cloudsql", "cnpg",
           "pgbouncer")
# one server writing the same log in several formats at once (log_destination = 'csvlog,jsonlog,stderr'): the
# most structured is read
PREFERENCE = {"csvlog": 0, "jsonlog": 1, "supabase-json": 2, "supabase-csv": 2, "stderr": 3}
SNIFF_LINES = 200
SNIFF_CHARS = 1 << 20
# a compressed file's lines are cut here: a 1 KB bzip2 of one 1 GB line must not take a GB to read
MAX_LINE_BYTES = 16 << 20
CUT_MARK = b" [line cut by opsbook: over 16 MiB]\n"
_COMPRESSED = re.compile(r"\.(gz|bz2|xz)$")
_LOG_SUFFIX = re.compile(r"\.(log|csv|json|txt)$")
_ROTATED = re.compile(r"(.*?)(\.\d+)?$", re.S)
_KUBECTL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\S+Z \{")


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


class _XZ(lzma.LZMAFile):
    """An xz stream whose damage reads as EOFError, as a truncated gzip's or bzip2's does."""

    def _safe(self, call, *a):
        try:
            return call(*a)
        except lzma.LZMAError as e:
            raise EOFError(f"corrupt xz data ({e})") from None

    def read(self, size=-1):
        return self._safe(super().read, size)

    def read1(self, size=-1):
        return self._safe(super().read1, size)

    def readinto(self, b):
        return self._safe(super().readinto, b)

    def peek(self, size=-1):
        return self._safe(super().peek, size)


def open_text(path: Path):
    """A text stream over a plain, gzip'd, bzip2'd or xz'd regular file (told by its first bytes, not its name);
    undecodable bytes are replaced, never fatal.

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
    magic = raw.peek(6)[:6]
    if magic[:2] == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        gz.myfileobj = raw  # GzipFile closes only a file it opened itself: hand this one over
        return _text(_LineCap(gz))
    if magic[:3] == b"BZh":
        return _text(_LineCap(_owning(bz2.BZ2File(raw, "rb"), raw)))
    if magic == b"\xfd7zXZ\x00":
        return _text(_LineCap(_owning(_XZ(raw, "rb"), raw)))
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="\n")


def _text(raw) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", errors="replace", newline="\n")


class _LineCap(io.RawIOBase):
    """A decompressed stream whose lines longer than MAX_LINE_BYTES are cut there (CUT_MARK ends them), the rest
    of such a line skipped: memory stays bounded whatever the archive expands to."""

    def __init__(self, src):
        self.src, self.run, self.skipping, self.pending = src, 0, False, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.pending:
            chunk = self.src.read1(1 << 16)  # what one step decompressed: a damaged tail loses no line before it
            if not chunk:
                return 0
            self.pending = self._cap(chunk)
        n = min(len(b), len(self.pending))
        b[:n], self.pending = self.pending[:n], self.pending[n:]
        return n

    def _cap(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            nl = chunk.find(b"\n")
            line, chunk = (chunk, b"") if nl < 0 else (chunk[:nl + 1], chunk[nl + 1:])
            if self.skipping:
                if nl >= 0 or not chunk and line.endswith(b"\n"):
                    self.skipping, self.run = False, 0
                continue
            room = MAX_LINE_BYTES - self.run
            if len(line) > room and not (len(line) == room + 1 and line.endswith(b"\n")):
                out.append(line[:room] + CUT_MARK)
                self.skipping, self.run = not line.endswith(b"\n"), 0
                continue
            out.append(line)
            self.run = 0 if line.endswith(b"\n") else self.run + len(line)
        return b"".join(out)

    def close(self) -> None:
        try:
            self.src.close()
        finally:
            super().close()


def _owning(stream, raw):
    """The decompressing stream, closing the file under it too (BZ2File and LZMAFile close only what they
    opened)."""
    close = stream.close

    def both():
        try:
            close()
        finally:
            raw.close()

    stream.close = both
    return stream


def _head(path: Path) -> list[str]:
    lines: list[str] = []
    try:
        with open_text(path) as f:
            size = 0
            for _ in range(SNIFF_LINES):
                line = f.readline(SNIFF_CHARS - size)  # one line of a GB is not read whole to sniff it
                if not line:
                    break
                lines.append(line)
                size += len(line)
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, lzma.LZMAError):
        pass  # a truncated archive still shows its first lines; what follows is reported while reading
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
    if _KUBECTL_TIME.match(first):  # `kubectl logs --timestamps`: its time, then the container's JSON line
        first = first.split(" ", 1)[1]
    if fmt:
        lf.fmt = fmt
    elif first.lstrip().startswith("["):
        lf.fmt = "supabase-json"
    elif first.startswith("{"):
        try:
            d = json.loads(first)
        except RecursionError:  # arrays nested thousands deep: no log writes that
            lf.reason = "not a PostgreSQL log (JSON nested too deep)"
            return lf
        except ValueError:
            lf.fmt = "supabase-json"  # a pretty-printed export
        else:
            lf.fmt = (kind_of(d) if isinstance(d, dict) else None) or (
                "jsonlog" if isinstance(d, dict) and ("error_severity" in d or "message" in d) else "supabase-json")
    elif _envelope(lines):
        lf.fmt = _envelope(lines)
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
    if lf.fmt in ("syslog", "logplex"):
        lf.prefix = prefix  # the inner lines' log_line_prefix, when known (else read from what they show)
    if lf.fmt == "stderr":
        lf.prefix = prefix if prefix is not None else detect_prefix(lines)
        primary = [ln for ln in lines if ln.strip() and not ln.startswith("\t")]
        rx = compile_prefix(lf.prefix) if lf.prefix is not None else GENERIC
        if sum(1 for ln in primary if rx.match(ln) or GENERIC.match(ln)) * 2 < len(primary):
            lf.fmt, lf.reason = None, "not a PostgreSQL log (no line has a timestamp and a severity)"
            return lf
    lf.first_ts = _first_ts(lf, lines)
    return lf


def _envelope(lines: list[str]) -> str | None:
    """syslog, logplex or pgbouncer, when most of the first lines are in that format."""
    head = [ln for ln in lines[:50] if ln.strip()]
    votes: dict[str, int] = {}
    for ln in head:
        k = syslog.looks_like(ln) or ("pgbouncer" if pgbouncer.looks_like(ln) else None)
        if k:
            votes[k] = votes.get(k, 0) + 1
    best = max(votes, key=votes.get, default=None)
    return best if best and votes[best] * 2 >= len(head) else None


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


def stem(path: Path) -> str:
    """The name PostgreSQL gives one log in all its formats: postgresql-2026-12-01.log, .csv and .json (compressed
    or not) share postgresql-2026-12-01; logrotate's postgresql.log.1 and postgresql.csv.1 share postgresql.1."""
    name = _COMPRESSED.sub("", path.name)
    m = _ROTATED.match(name)
    return _LOG_SUFFIX.sub("", m.group(1)) + (m.group(2) or "")


def choose(files: list[LogFile]) -> tuple[list[LogFile], list[LogFile]]:
    """The files to read, in time order, and those left out: every file of every readable format, except where
    one log is there in several of PostgreSQL's formats (csvlog, jsonlog and stderr files of the same name): then
    only the most structured of them is read, so no event counts twice."""
    logs = [f for f in files if f.fmt]
    best: dict[tuple, str] = {}  # (folder, stem) -> the most structured format written under that name
    for f in logs:
        if f.fmt in PREFERENCE:
            key = (str(f.path.parent), stem(f.path))
            if key not in best or PREFERENCE[f.fmt] < PREFERENCE[best[key]]:
                best[key] = f.fmt
    twins = {}
    for f in logs:
        if f.fmt in PREFERENCE:
            twins.setdefault((str(f.path.parent), stem(f.path), f.fmt), f)
    keep = []
    for f in logs:
        key = (str(f.path.parent), stem(f.path))
        if f.fmt in PREFERENCE and best[key] != f.fmt:
            twin = twins[(*key, best[key])]
            f.reason = f"same log in another format ({f.fmt}); read {twin.path.name} ({twin.fmt}) instead"
        else:
            keep.append(f)
    keep.sort(key=lambda f: (f.first_ts is None, f.first_ts or 0, f.path.name))
    kept = {id(f) for f in keep}  # not `in keep`: a list search per file (quadratic in a big folder)
    return keep, [f for f in files if id(f) not in kept]


def series(files: list[LogFile], slack_s: float = 1.0) -> list[list[LogFile]]:
    """The chosen files (in time order) as runs that do not overlap in time, each to be read one file after the
    other, the runs merged by time: a rotated log is one run; a PgBouncer log beside PostgreSQL's, or two servers'
    logs in one folder, are runs of their own. A file ends when it was last written (its mtime)."""
    runs: list[list[LogFile]] = []
    ends: list[tuple[float, int]] = []  # a heap of (end of the run's last file, run): one look per file
    for f in files:
        try:
            end = f.path.stat().st_mtime
        except OSError:
            end = float("inf")
        start = f.first_ts if f.first_ts is not None else float("-inf")
        if ends and ends[0][0] <= start + slack_s:
            i = heapq.heappop(ends)[1]
            runs[i].append(f)
        else:
            i = len(runs)
            runs.append([f])
        heapq.heappush(ends, (end, i))
    return runs
