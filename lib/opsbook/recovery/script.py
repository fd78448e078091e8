"""A plain SQL backup is untrusted input: lex it as psql would, refuse psql meta-commands outside COPY data, and
leave out what must not run in a scratch database (CREATE/DROP DATABASE, \\connect, ownership and grants)."""
from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .psql_state import string_syntax_change

# What pg_dump itself writes as meta-commands: \restrict/\unrestrict (17.6+, 18) around the script, and \connect
# after CREATE DATABASE (-C). None is passed on: psql gets opsbook's own \restrict line with a key of its own, and
# the contents go into the scratch database.
RESTRICT_META = {"restrict", "unrestrict"}
CONNECT_META = {"connect", "c"}
# The first release of each branch whose psql has \restrict (CVE-2025-8714, August 2025); 18.0 and later have it.
RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
# Whole one-line statements left out of a restore into a scratch database (the archive path does the same with
# pg_restore --no-owner --no-privileges and without --create).
_SKIP = re.compile(r"^(CREATE|DROP|ALTER|COMMENT ON|SECURITY LABEL ON)\s+DATABASE\b|^ALTER\s+.*\sOWNER\s+TO\s|"
                   r"^(GRANT|REVOKE)\s|^ALTER\s+DEFAULT\s+PRIVILEGES\s", re.I | re.S)
_REFUSE_STMT = re.compile(r"^(CREATE|DROP|ALTER)\s+DATABASE\b|^SET\s+(SESSION\s+AUTHORIZATION|ROLE)\b", re.I | re.S)
_EXTENSION = re.compile(r'^CREATE EXTENSION IF NOT EXISTS ("(?:[^"]|"")+"|[\w$]+)(?: WITH SCHEMA '
                        r'("(?:[^"]|"")+"|[\w$]+))?$')
_COMMENT_EXT = re.compile(r"^COMMENT ON EXTENSION\s", re.I)
_CREATE_SCHEMA = re.compile(r'^CREATE SCHEMA ("(?:[^"]|"")+"|[\w$]+)$')
_COPY_STDIN = re.compile(r"^\s*COPY\b.*\bFROM\s+STDIN\b", re.I | re.S)
_IDENT = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")
_DOLLAR = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
_META = re.compile(r"\\([A-Za-z]+|[^A-Za-z\s])?")


def unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident.lower()


@dataclass
class Line:
    """One line as psql would see it."""

    number: int
    data: bool = False  # inside COPY ... FROM stdin data (or its closing \.)
    statement: str | None = None  # a whole statement on this one line, starting the line
    starts_statement: bool = False  # the line begins at top level with no statement pending
    meta: list[tuple[str, str]] = field(default_factory=list)  # (command, the line from it on)
    problem: str | None = None


class Lexer:
    """Tracks quotes, dollar quotes, comments and COPY data across lines, the way psql's scanner does."""

    def __init__(self) -> None:
        self.state = "normal"  # normal | squote | equote | dquote | dollar | block
        self.tag = ""
        self.depth = 0
        self.stmt: list[str] = []
        self.copy_data = False
        self.number = 0

    def line(self, text: str) -> Line:
        self.number += 1
        out = Line(self.number)
        if self.copy_data:
            out.data = True
            if text.rstrip("\r\n") == "\\.":
                self.copy_data = False
            return out
        out.starts_statement = self.state == "normal" and not "".join(self.stmt).strip()
        i, n = 0, len(text)
        ended: list[str] = []
        while i < n:
            ch = text[i]
            st = self.state
            if st == "normal":
                if ch == "-" and text.startswith("--", i):
                    self.stmt.append(" ")  # a comment separates tokens, as whitespace does
                    break
                if ch == "/" and text.startswith("/*", i):
                    self.state, self.depth, i = "block", 1, i + 2
                    self.stmt.append(" ")
                    continue
                if ch == "'":
                    prev = text[i - 1] if i else ""
                    self.state = "equote" if prev in "eE" and not _ident_before(text, i - 1) else "squote"
                    self.stmt.append(ch)
                    i += 1
                    continue
                if ch == '"':
                    self.state = "dquote"
                    self.stmt.append(ch)
                    i += 1
                    continue
                if ch == "$" and not (i and _is_ident_char(text[i - 1])):
                    m = _DOLLAR.match(text, i)
                    if m:
                        self.state, self.tag = "dollar", m.group(0)
                        self.stmt.append(m.group(0))
                        i = m.end()
                        continue
                if ch == "\\":
                    m = _META.match(text, i)
                    cmd = (m.group(1) or "") if m else ""
                    # pg_dump writes its meta-commands alone on their line, at the start of a statement
                    alone = out.starts_statement and not text[:i].strip()
                    out.meta.append((cmd if alone else f"{cmd} (after SQL on its line)", text[i:].rstrip("\r\n")))
                    break  # a meta-command takes the rest of the line
                if ch == ";":
                    stmt = "".join(self.stmt).strip()
                    self.stmt = []
                    ended.append(stmt)
                    if _COPY_STDIN.match(stmt):
                        self.copy_data = True
                        if text[i + 1:].strip():
                            out.problem = "text after COPY ... FROM stdin on the same line"
                    i += 1
                    continue
                if _is_ident_char(ch):
                    m = _IDENT.match(text, i)
                    if m:
                        self.stmt.append(m.group(0))
                        i = m.end()
                        continue
                self.stmt.append(ch)
                i += 1
            elif st == "squote":
                j = text.find("'", i)
                if j < 0:
                    self.stmt.append(text[i:])
                    break
                if text.startswith("''", j):
                    self.stmt.append(text[i:j + 2])
                    i = j + 2
                    continue
                self.stmt.append(text[i:j + 1])
                self.state, i = "normal", j + 1
            elif st == "equote":
                if ch == "\\":
                    self.stmt.append(text[i:i + 2])
                    i += 2
                elif ch == "'":
                    if text.startswith("''", i):
                        self.stmt.append("''")
                        i += 2
                    else:
                        self.stmt.append(ch)
                        self.state, i = "normal", i + 1
                else:
                    self.stmt.append(ch)
                    i += 1
            elif st == "dquote":
                j = text.find('"', i)
                if j < 0:
                    self.stmt.append(text[i:])
                    break
                if text.startswith('""', j):
                    self.stmt.append(text[i:j + 2])
                    i = j + 2
                    continue
                self.stmt.append(text[i:j + 1])
                self.state, i = "normal", j + 1
            elif st == "dollar":
                j = text.find(self.tag, i)
                if j < 0:
                    self.stmt.append(text[i:])
                    break
                self.stmt.append(text[i:j + len(self.tag)])
                self.state, i = "normal", j + len(self.tag)
            else:  # block comment, nested
                if text.startswith("/*", i):
                    self.depth, i = self.depth + 1, i + 2
                elif text.startswith("*/", i):
                    self.depth, i = self.depth - 1, i + 2
                    if self.depth == 0:
                        self.state = "normal"
                else:
                    i += 1
        if self.state == "normal" and self.stmt and not "".join(self.stmt).strip():
            self.stmt = []
        if out.starts_statement and len(ended) == 1 and not "".join(self.stmt).strip() and not out.meta:
            out.statement = ended[0]
        out.ended = ended  # type: ignore[attr-defined]
        return out


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$" or ord(ch) >= 0x80


def _ident_before(text: str, j: int) -> bool:
    """Is text[j] (an E) the end of a longer identifier, as in `somE'...'`? Then the quote is a plain one."""
    return j > 0 and _is_ident_char(text[j - 1])


@dataclass
class Refusal:
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        shown = self.text if len(self.text) <= 120 else self.text[:117] + "..."
        return f"line {self.line}: `{shown}`: {self.why}"


@dataclass
class Decision:
    """What to do with one line: pass it to psql, leave it out (and why), or refuse the whole script."""

    keep: bool
    left_out: str | None = None
    refusal: Refusal | None = None


class ScriptGuard:
    """Line-by-line judge of a plain script, used both to scan it before anything runs and, again, on the very
    bytes fed to psql (so a file changed in between cannot slip a meta-command through)."""

    def __init__(self, precreated_schemas: set[str] = frozenset(), skip_extensions: bool = False) -> None:
        self.lexer = Lexer()
        self.precreated_schemas = set(precreated_schemas)
        self.skip_extensions = skip_extensions
        self.connects = 0
        self.extensions: list[tuple[str, str]] = []
        self.left_out: dict[str, int] = {}

    def judge(self, raw: bytes) -> Decision:
        text = raw.decode("utf-8", "replace")
        ln = self.lexer.line(text)
        if ln.data:
            return Decision(True)
        shown = text.rstrip("\r\n")
        if ln.problem:
            return Decision(False, refusal=Refusal(ln.number, shown, ln.problem))
        for cmd, rest in ln.meta:
            if cmd in RESTRICT_META:  # pg_dump's own, alone on its line: psql gets opsbook's key instead
                return Decision(False)
            if cmd in CONNECT_META:
                self.connects += 1
                if self.connects > 1:
                    return Decision(False, refusal=Refusal(ln.number, shown, "a second \\connect: a script of more "
                                                           "than one database (pg_dumpall?) is not restored"))
                return self._leave_out("\\connect (from pg_dump -C): the contents go into the scratch database")
            return Decision(False, refusal=Refusal(ln.number, rest, f"psql meta-command \\{cmd} outside COPY data: "
                                                   "a backup must not run commands on this machine; refused, "
                                                   "nothing of it was executed"))
        for stmt in getattr(ln, "ended", []):
            if _REFUSE_STMT.match(stmt) and not (ln.statement and _SKIP.match(stmt)):
                return Decision(False, refusal=Refusal(ln.number, shown, "this statement must not run in a "
                                                       "restore (database or role change)"))
            if why := string_syntax_change(stmt):
                return Decision(False, refusal=Refusal(ln.number, shown, f"{why}; the guard reads the script as "
                                                       "UTF-8 with standard_conforming_strings on, as psql must"))
        stmt = ln.statement
        if stmt is None:
            return Decision(True)
        if m := _EXTENSION.match(stmt):
            self.extensions.append((unquote(m.group(1)), unquote(m.group(2)) if m.group(2) else ""))
            if self.skip_extensions:
                return self._leave_out("CREATE EXTENSION: created beforehand by opsbook")
        if self.skip_extensions and _COMMENT_EXT.match(stmt):
            return self._leave_out("COMMENT ON EXTENSION: the extension belongs to opsbook's superuser")
        if (m := _CREATE_SCHEMA.match(stmt)) and unquote(m.group(1)) in self.precreated_schemas:
            return self._leave_out("CREATE SCHEMA of an extension's schema created beforehand")
        if _SKIP.match(stmt):
            kind = "DATABASE" if re.search(r"\bDATABASE\b", stmt[:40], re.I) else \
                "OWNER TO" if re.search(r"OWNER\s+TO", stmt, re.I) else "GRANT/REVOKE"
            return self._leave_out(f"{kind} (restored with no owner and no privileges, into the scratch database)")
        return Decision(True)

    def _leave_out(self, why: str) -> Decision:
        self.left_out[why] = self.left_out.get(why, 0) + 1
        return Decision(False, left_out=why)


def opener(backup):
    return gzip.open if backup.format == "plain.gz" else open


@dataclass
class ScanResult:
    refusal: Refusal | None
    extensions: list[tuple[str, str]]
    connects: int
    lines: int
    error: str | None = None


def scan(backup) -> ScanResult:
    """Read the whole script once through the guard: the first refusal, the extensions it creates."""
    guard = ScriptGuard()
    try:
        with opener(backup)(Path(backup.path), "rb") as f:
            for raw in f:
                d = guard.judge(raw)
                if d.refusal:
                    return ScanResult(d.refusal, guard.extensions, guard.connects, guard.lexer.number)
    except (OSError, EOFError, zlib.error) as e:
        return ScanResult(None, guard.extensions, guard.connects, guard.lexer.number, str(e))
    return ScanResult(None, guard.extensions, guard.connects, guard.lexer.number)


# ------------------------------------------------------------------------------------------ psql's own guard
def restrict_line(key: str) -> bytes:
    """What psql reads before any byte of the backup: the string syntax the guard assumes, then \\restrict with a
    key only opsbook knows, after which psql runs no meta-command at all (only \\unrestrict with that key)."""
    if not key.isalnum():
        raise ValueError("a \\restrict key is letters and digits")
    return f"SET client_encoding = 'UTF8'; SET standard_conforming_strings = on; \\restrict {key}\n".encode()


def restrict_problem(version_text: str) -> str | None:
    """None when the psql that printed `version_text` (`psql --version`) has \\restrict, else why not."""
    m = re.search(r"\(PostgreSQL\) (\d+)(?:\.(\d+)|(devel|beta\d*|rc\d*))?", version_text)
    if not m:
        return f"its version could not be read ({version_text.strip()[:80]!r})"
    major, minor, pre = int(m.group(1)), m.group(2), m.group(3)
    shown = f"{major}.{minor}" if minor is not None else f"{major}{pre or ''}"
    if major >= 19 or (major == 18 and (minor is not None or (pre or "").startswith("rc"))):
        return None
    if major in RESTRICT_SINCE and minor is not None and int(minor) >= RESTRICT_SINCE[major]:
        return None
    return f"psql {shown} has no \\restrict"


def psql_problem(psql: str) -> str | None:
    """Why this psql must not replay a plain script (it lacks \\restrict), or None."""
    import subprocess  # noqa: PLC0415

    try:
        out = subprocess.run([psql, "--version"], capture_output=True, text=True, errors="replace", timeout=20,
                             stdin=subprocess.DEVNULL)
        text = out.stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        text = str(e)
    why = restrict_problem(text)
    if why is None:
        return None
    need = ", ".join(f"{major}.{minor}" for major, minor in RESTRICT_SINCE.items())
    return (f"{psql}: {why}, which a plain SQL backup needs so that no psql meta-command in it can run; not "
            f"restored. Use psql {need}, 18 or newer (client_bindir), or restore a custom-format dump")
