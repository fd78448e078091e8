"""Backup files: what format a dump is, which one is newest, what its header says, and whether it reads whole."""
from __future__ import annotations

import datetime as dt
import gzip
import re
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..core.redact import redact_sql
from .tools import Client

# What a folder of backups may hold: pg_dump's usual extensions, plain SQL (gzipped too), directory dumps.
DUMP_SUFFIXES = (".dump", ".backup", ".pgdump", ".custom", ".sql", ".sql.gz", ".tar", ".pgsql")
MAX_DEPTH = 3  # /backups/20261121/database.dump: the guides' own layout is two levels deep
PLAIN_HEADER = "-- PostgreSQL database dump"
PLAIN_TRAILER = "-- PostgreSQL database dump complete"
_ARCHIVE_FORMATS = {1: "custom", 3: "tar", 5: "directory"}  # pg_backup_archiver.h ArchiveFormat


@dataclass
class Backup:
    """One dump on disk and what is known about it."""

    path: Path
    format: str | None  # custom | directory | tar | plain | plain.gz | None (empty or unrecognised)
    size_bytes: int
    modified_at: dt.datetime
    created_at: dt.datetime | None = None  # from the archive's own header, when it has one
    dbname: str | None = None
    dumped_from: str | None = None  # server version
    dumped_by: str | None = None  # pg_dump version
    compression: str | None = None
    toc_entries: int | None = None
    encoding: str | None = None  # the dump's client_encoding: the database's unless pg_dump -E said otherwise
    problem: str | None = None  # why it is not a usable dump (empty, unknown format)

    @property
    def taken_at(self) -> dt.datetime:
        return (self.created_at or self.modified_at).astimezone(dt.timezone.utc)

    @property
    def taken_from(self) -> str:
        return "the archive's header" if self.created_at else "the file's modification time"

    @property
    def is_archive(self) -> bool:
        return self.format in ("custom", "directory", "tar")

    @property
    def dumped_by_major(self) -> int:
        m = re.match(r"(\d+)", self.dumped_by or "")
        return int(m.group(1)) if m else 0

    def row(self) -> dict:
        return {"path": str(self.path), "format": self.format or "unknown", "size_bytes": self.size_bytes,
                "taken_at": f"{self.taken_at:%Y-%m-%d %H:%M:%S} UTC", "taken_from": self.taken_from,
                "dbname": self.dbname,
                "dumped_from": self.dumped_from, "dumped_by": self.dumped_by}


def detect_format(path: Path) -> str | None:
    """By content, not by name: PGDMP magic, tar's ustar, a directory with toc.dat, plain SQL (maybe gzipped)."""
    path = Path(path)
    if path.is_dir():
        toc = path / "toc.dat"
        return "directory" if toc.is_file() and toc.read_bytes()[:5] == b"PGDMP" else None
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if head[:5] == b"PGDMP":
        return "custom"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                inner = g.read(512)
        except (OSError, EOFError, zlib.error):
            return None
        return "plain.gz" if _looks_plain(inner) else None
    return "plain" if _looks_plain(head) else None


def _looks_plain(head: bytes) -> bool:
    text = head.decode("utf-8", "replace")
    return PLAIN_HEADER in text or bool(re.match(r"\s*(--|SET |CREATE |\\restrict)", text))


def describe(path: Path) -> Backup:
    path = Path(path)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        mtime = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
    else:
        st = path.stat()
        size, mtime = st.st_size, st.st_mtime
    fmt = detect_format(path) if size else None
    b = Backup(path, fmt, size, dt.datetime.fromtimestamp(mtime, dt.timezone.utc))
    if size == 0:
        b.problem = "the file is empty (0 bytes)"
    elif fmt is None:
        b.problem = "not a pg_dump archive or SQL script (no PGDMP header, no SQL dump header)"
    return b


def candidates(folder: Path) -> list[Path]:
    """Dumps in a folder and its subfolders (up to MAX_DEPTH): files by suffix, directories holding toc.dat."""
    out = []

    def walk(d: Path, depth: int) -> None:
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        for p in entries:
            if p.is_dir():
                if (p / "toc.dat").is_file():
                    out.append(p)
                elif depth < MAX_DEPTH:
                    walk(p, depth + 1)
            elif p.is_file() and p.name.lower().endswith(DUMP_SUFFIXES):
                out.append(p)

    walk(Path(folder), 1)
    return out


@dataclass
class Located:
    """The result of looking for a backup: the one chosen, and everything that was considered."""

    searched: str
    backup: Backup | None
    considered: list[Backup] = field(default_factory=list)
    reason: str = ""  # why none was chosen


def locate(spec: str | Path | None) -> Located:
    """A file or directory dump as given; for a folder of dumps, the newest (by the time it was taken)."""
    if spec is None or str(spec).strip() == "":
        return Located("(nothing given)", None, reason="no backup location was given and the target has none "
                       "configured")
    path = Path(str(spec)).expanduser()
    if not path.exists():
        return Located(str(path), None, reason=f"{path} does not exist")
    if path.is_file() or (path / "toc.dat").is_file():
        b = describe(path)
        return Located(str(path), b, [b])
    found = [describe(p) for p in candidates(path)]
    if not found:
        return Located(str(path), None, reason=f"no dump files ({', '.join(DUMP_SUFFIXES)}) or directory dumps "
                       f"under {path}")
    found.sort(key=lambda b: b.modified_at, reverse=True)
    return Located(str(path), found[0], found)


# ------------------------------------------------------------------------------------------ header
def read_header(backup: Backup, client: Client) -> str | None:
    """Fill in what the dump says about itself; returns an error line when the header cannot be read."""
    if backup.problem:
        return backup.problem
    if backup.is_archive:
        out = _run([client.path("pg_restore"), "--list", str(backup.path)])
        if out.returncode != 0:
            return _last_error(out.stderr) or f"pg_restore --list exited with {out.returncode}"
        _parse_list_header(backup, out.stdout)
        backup.encoding = _archive_encoding(backup, client)
        return None
    head = _plain_head(backup)
    backup.encoding = _encoding_in(head)
    m = re.search(r"-- Dumped from database version (\S+)", head)
    backup.dumped_from = m.group(1) if m else None
    m = re.search(r"-- Dumped by pg_dump version (\S+)", head)
    backup.dumped_by = m.group(1) if m else None
    m = re.search(r"-- Started on (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)", head)
    if m and m.group(2) == "UTC":  # written with --verbose only
        backup.created_at = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=dt.timezone.utc)
    backup.compression = "gzip" if backup.format == "plain.gz" else "none"
    return None


def _parse_list_header(backup: Backup, listing: str) -> None:
    m = re.search(r"^; Archive created at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)", listing, re.M)
    if m:
        stamp = dt.datetime.fromisoformat(m.group(1))
        backup.created_at = stamp.replace(tzinfo=dt.timezone.utc) if m.group(2) == "UTC" else stamp.astimezone()
    for key, attr in (("dbname", "dbname"), ("Dumped from database version", "dumped_from"),
                      ("Dumped by pg_dump version", "dumped_by"), ("Compression", "compression"),
                      ("TOC Entries", "toc_entries")):
        m = re.search(rf"^;\s+{re.escape(key)}: (.+)$", listing, re.M)
        if m:
            value = m.group(1).strip()
            setattr(backup, attr, int(value) if attr == "toc_entries" else value)


_CLIENT_ENCODING = re.compile(r"^SET client_encoding = '([A-Za-z0-9_]+)';$", re.M)


def _encoding_in(script_head: str) -> str | None:
    m = _CLIENT_ENCODING.search(script_head)
    return m.group(1) if m else None


def _archive_encoding(backup: Backup, client: Client) -> str | None:
    """The archive's ENCODING entry, as pg_restore writes it before any entry (an empty list selects none)."""
    out = _run([client.path("pg_restore"), "--use-list=/dev/null", "--file=-", str(backup.path)])
    return _encoding_in(out.stdout) if out.returncode == 0 else None


def _plain_head(backup: Backup, size: int = 4096) -> str:
    opener = gzip.open if backup.format == "plain.gz" else open
    try:
        with opener(backup.path, "rb") as f:
            return f.read(size).decode("utf-8", "replace")
    except (OSError, EOFError, zlib.error):
        return ""


def toc(backup: Backup, client: Client):
    """The archive's table of contents as rows (id, kind, schema, name), for archives only."""
    import pandas as pd  # noqa: PLC0415

    out = _run([client.path("pg_restore"), "--list", str(backup.path)])
    rows = []
    for line in out.stdout.splitlines():
        m = re.match(r"^(\d+); \d+ \d+ (.+)$", line)
        if m:
            rows.append({"id": int(m.group(1)), **split_toc_desc(m.group(2))})
    return pd.DataFrame(rows, columns=["id", "kind", "schema", "name", "owner"])


_KINDS = sorted(["TABLE DATA", "SEQUENCE SET", "FK CONSTRAINT", "MATERIALIZED VIEW DATA", "SEQUENCE OWNED BY",
                 "DEFAULT ACL", "ROW SECURITY", "EVENT TRIGGER", "INDEX ATTACH", "LARGE OBJECT", "BLOB DATA",
                 "BLOB METADATA", "LARGE OBJECTS", "FOREIGN TABLE", "MATERIALIZED VIEW", "TEXT SEARCH",
                 "SCHEMA", "TABLE", "SEQUENCE", "INDEX", "CONSTRAINT", "TRIGGER", "POLICY", "FUNCTION", "TYPE",
                 "VIEW", "EXTENSION", "COMMENT", "ACL", "DEFAULT", "DOMAIN", "RULE", "AGGREGATE", "PROCEDURE",
                 "ENCODING", "STDSTRINGS", "SEARCHPATH", "DATABASE", "PUBLICATION", "STATISTICS"],
                key=len, reverse=True)


def toc_kind(desc: str) -> str:
    """The entry kind a description starts with: 'FK CONSTRAINT', 'SEQUENCE SET', 'TABLE' ..."""
    return next((k for k in _KINDS if desc == k or desc.startswith(k + " ")), desc.split(" ", 1)[0])


def split_toc_desc(desc: str) -> dict:
    """'TABLE DATA public leads postgres' -> kind, schema, name, owner (kinds may hold spaces)."""
    kind = toc_kind(desc)
    rest = desc[len(kind):].strip().split(" ")
    schema = rest[0] if len(rest) >= 3 and rest[0] != "-" else None
    owner = rest[-1] if len(rest) >= 2 else None
    name = " ".join(rest[1:-1]) if len(rest) >= 3 else (rest[0] if rest else "")
    return {"kind": kind, "schema": schema, "name": name, "owner": owner}


# ------------------------------------------------------------------------------------------ integrity
def integrity(backup: Backup, client: Client):
    """Read the whole backup without a database: each step with its outcome, seconds and message.

    Archives: the table of contents (pg_restore --list), then every data block (pg_restore -f /dev/null, which
    decompresses each one and so catches truncation and corruption that --list alone does not see).
    Plain SQL: the dump header, then the whole file (gzip's CRC too) and pg_dump's closing line.
    """
    import pandas as pd  # noqa: PLC0415

    steps = []
    if backup.problem:
        steps.append(_step("readable", False, 0.0, backup.problem))
    elif backup.is_archive:
        t0 = time.perf_counter()
        out = _run([client.path("pg_restore"), "--list", str(backup.path)])
        ok = out.returncode == 0
        entries = sum(1 for line in out.stdout.splitlines() if re.match(r"^\d+;", line))
        steps.append(_step("table of contents (pg_restore --list)", ok, time.perf_counter() - t0,
                           f"{entries} entries" if ok else _last_error(out.stderr)))
        if ok:
            t0 = time.perf_counter()
            out = _run([client.path("pg_restore"), "-f", "/dev/null", str(backup.path)])
            steps.append(_step("all data blocks (pg_restore -f /dev/null)", out.returncode == 0,
                               time.perf_counter() - t0, "every block read and decompressed" if out.returncode == 0
                               else _last_error(out.stderr)))
    else:
        t0 = time.perf_counter()
        head = _plain_head(backup, 256)
        ok = PLAIN_HEADER in head
        steps.append(_step("SQL dump header", ok, time.perf_counter() - t0,
                           "pg_dump's header found" if ok else "no '-- PostgreSQL database dump' header: not "
                           "written by pg_dump, or the start is missing"))
        t0 = time.perf_counter()
        ok, message = _plain_read_whole(backup)
        steps.append(_step("whole file and closing line", ok, time.perf_counter() - t0, message))
    return pd.DataFrame(steps, columns=["step", "ok", "duration_s", "message"])


def _plain_read_whole(backup: Backup) -> tuple[bool, str]:
    opener = gzip.open if backup.format == "plain.gz" else open
    tail = b""
    total = 0
    try:
        with opener(backup.path, "rb") as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
                tail = (tail + chunk)[-4096:]
    except (OSError, EOFError, zlib.error) as e:  # gzip: CRC mismatch or cut short
        return False, f"cannot read the whole file after {total:,} bytes: {e}"
    if PLAIN_TRAILER.encode() not in tail:
        return False, (f"read {total:,} bytes but pg_dump's closing line '{PLAIN_TRAILER}' is missing: the dump "
                       "was cut short (disk full, killed, partial copy)")
    return True, f"{total:,} bytes read; pg_dump's closing line present"


def _step(step: str, ok: bool, seconds: float, message: str) -> dict:
    return {"step": step, "ok": ok, "duration_s": round(seconds, 3), "message": redact_sql(message or "")}


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=_env())


def _env() -> dict:
    from ..database.clientenv import child_env  # noqa: PLC0415

    return child_env()


def _last_error(stderr: str) -> str:
    lines = [line for line in (stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    return redact_sql((errors or lines or [""])[-1].replace("pg_restore: error: ", "").strip())
