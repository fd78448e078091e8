"""Scratch databases that are always dropped, and a timed restore into one with its timeline and errors."""
from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import re
import secrets
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..core.redact import redact_sql
from .archive import Backup, toc_kind
from .tools import Client

SCRATCH_PREFIXES = ("opsbook_verify", "opsbook_recover")
_SCRATCH_NAME = re.compile(r"^opsbook_(verify|recover)_\d{8}_\d{6}_[0-9a-f]{4}$")

# What pg_restore reports per TOC entry, sorted into the three phases of a restore.
DATA_KINDS = {"TABLE DATA", "SEQUENCE SET", "BLOBS", "BLOB DATA", "LARGE OBJECT", "LARGE OBJECTS"}
POST_KINDS = {"INDEX", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "POLICY", "ROW SECURITY", "RULE",
              "EVENT TRIGGER", "MATERIALIZED VIEW DATA", "INDEX ATTACH", "PUBLICATION TABLE", "STATISTICS DATA"}
# Work that grows with the data (copying rows, building indexes, validating keys); the rest is per object.
SCALING_KINDS = {"TABLE DATA", "BLOBS", "BLOB DATA", "LARGE OBJECT", "LARGE OBJECTS", "INDEX", "CONSTRAINT",
                 "FK CONSTRAINT", "MATERIALIZED VIEW DATA", "INDEX ATTACH"}


def phase_of(kind: str) -> str:
    return "data" if kind in DATA_KINDS else "post-data" if kind in POST_KINDS else "pre-data"


# ------------------------------------------------------------------------------------------ scratch names
def scratch_name(purpose: str = "verify", at: dt.datetime | None = None) -> str:
    """opsbook_verify_20261121_224812_3fa1: unmistakable, sortable, unique within the second."""
    if purpose not in ("verify", "recover"):
        raise ValueError(f"scratch purpose {purpose!r}")
    at = at or dt.datetime.now(dt.timezone.utc)
    return f"opsbook_{purpose}_{at:%Y%m%d_%H%M%S}_{secrets.token_hex(2)}"


def is_scratch_name(name: str) -> bool:
    return bool(_SCRATCH_NAME.match(name))


# ------------------------------------------------------------------------------------------ restoring
@dataclass
class RestoreResult:
    """What a restore did: exit status, seconds, errors quoted, and one event per object restored."""

    command: str
    returncode: int
    duration_s: float
    events: list[dict] = field(default_factory=list)  # start_s, end_s, phase, kind, name
    errors: list[dict] = field(default_factory=list)  # message, context
    fatal: str | None = None  # an error that stopped the restore (unreadable data, lost connection)
    timed_out: bool = False
    refused: str | None = None  # the line of a plain script that was refused (a psql meta-command)
    left_out: dict = field(default_factory=dict)  # statements of a plain script not run, by why

    @property
    def completed(self) -> bool:
        return self.fatal is None and not self.timed_out

    def events_frame(self):
        import pandas as pd  # noqa: PLC0415

        df = pd.DataFrame(self.events, columns=["start_s", "end_s", "phase", "kind", "name"])
        df["duration_s"] = df["end_s"] - df["start_s"]
        return df

    def errors_frame(self):
        import pandas as pd  # noqa: PLC0415

        return pd.DataFrame(self.errors, columns=["message", "context"])


def restore(backup: Backup, client: Client, conninfo: str, *, jobs: int = 1, section: str | None = None,
            table: tuple[str, str] | None = None, timeout_s: float | None = None, scratch=None) -> RestoreResult:
    """Restore `backup` into the (scratch) database at `conninfo`, timing every object as it goes.

    Archives go through pg_restore --verbose (--no-owner --no-privileges, never --create: the contents go into
    the scratch database; with `scratch.list_file`, the entries opsbook made beforehand are left out). Plain SQL
    is fed to psql line by line through a ScriptGuard: a psql meta-command stops the restore before psql sees
    it, CREATE/DROP DATABASE, \\connect, ownership and grants are left out. Errors do not stop the restore, as
    with pg_restore's and psql's defaults; they are collected and quoted.
    """
    from ..database.embedded import server_account  # noqa: PLC0415
    from .script import ScriptGuard, psql_problem  # noqa: PLC0415
    from .tools import client_connection  # noqa: PLC0415

    if not is_scratch_name(_dbname(conninfo)):
        raise ValueError("restores only ever go into an opsbook scratch database")
    with client_connection(conninfo, "opsbook-restore") as (dsn, env):
        if backup.is_archive:
            cmd = [client.path("pg_restore"), "--verbose", "--no-owner", "--no-privileges", "--no-password"]
            if jobs > 1 and not table:
                cmd.append(f"--jobs={jobs}")
            if section:
                cmd.append(f"--section={section}")
            if table:
                cmd += ["--schema", table[0], "--table", table[1]]
            if scratch is not None and scratch.list_file:
                cmd += ["--use-list", scratch.list_file]
            cmd += ["--dbname", dsn, str(backup.path)]
            shown = " ".join(cmd[:-3] + ["--dbname", "'<scratch>'", str(backup.path)])
            return _watch(cmd, env, shown, _pg_restore_line, stdin_feed=None, timeout_s=timeout_s)
        cmd = [client.path("psql"), "--no-psqlrc", "--quiet", "--no-password", "--output=/dev/null",
               "--set=ON_ERROR_STOP=0", "--file=-", "--dbname", dsn]
        shown = " ".join(cmd[:-1] + ["'<scratch>'", "<", str(backup.path)])
        if problem := psql_problem(client.path("psql")):  # without \restrict, the guard would be the only line
            return RestoreResult(shown, -1, 0.0, fatal=problem)
        only = f"{table[0]}.{table[1]}" if table else None
        guard = ScriptGuard(scratch.precreated_schemas if scratch else set(),
                            bool(scratch and scratch.skip_extensions))
        # psql, the one tool with shell escapes, never runs as root: as the unprivileged server account, into a
        # throwaway cluster and into a scratch target alike
        as_account = server_account() is not None
        if as_account:
            env = _for_account(env)
        env.pop("PGCLIENTENCODING", None)  # psql starts in the database's encoding, then gets UTF8 from opsbook
        return _watch(cmd, env, shown, _psql_line, stdin_feed=backup, timeout_s=timeout_s, copy_only=only,
                      guard=guard, as_account=as_account)


def restore_table(backup: Backup, client: Client, conninfo: str, schema: str, table: str,
                  timeout_s: float | None = None, scratch=None) -> RestoreResult:
    """The schema (pre-data) and one table's rows: all a table recovery needs, without every other table's data.

    Archives: pg_restore --section=pre-data, then --section=data for that table. Plain SQL: the whole script, but
    the COPY blocks of other tables are skipped on the way to psql.
    """
    if not backup.is_archive:
        return restore(backup, client, conninfo, table=(schema, table), timeout_s=timeout_s, scratch=scratch)
    first = restore(backup, client, conninfo, section="pre-data", timeout_s=timeout_s, scratch=scratch)
    if not first.completed:
        return first
    second = restore(backup, client, conninfo, section="data", table=(schema, table), timeout_s=timeout_s,
                     scratch=scratch)
    offset = first.duration_s
    events = first.events + [{**e, "start_s": e["start_s"] + offset, "end_s": e["end_s"] + offset}
                             for e in second.events]
    return RestoreResult(f"{first.command}; {second.command}", second.returncode or first.returncode,
                         first.duration_s + second.duration_s, events, first.errors + second.errors, second.fatal,
                         second.timed_out, second.refused)


def _for_account(env: dict) -> dict:
    """psql's environment when it runs as the server account: that account's home (root's is not readable: libpq
    would fail on ~/.postgresql), and the connection's private service file handed over to it."""
    import os  # noqa: PLC0415
    import pwd  # noqa: PLC0415

    from ..database.embedded import server_account  # noqa: PLC0415

    pw = pwd.getpwnam(server_account())
    if service := env.get("PGSERVICEFILE"):  # 0600 in a 0700 folder that exists only while psql runs
        for path in (Path(service).parent, Path(service)):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    return {**env, "HOME": pw.pw_dir}


def _dbname(conninfo: str) -> str:
    from .tools import dbname_of  # noqa: PLC0415

    return dbname_of(conninfo)


class _Timeline:
    """Events in arrival order; each ends when the next begins (or when its 'finished item' line arrives)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.events: list[dict] = []
        self.open: dict[str, dict] = {}
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def start(self, kind: str, name: str, item: str | None = None) -> None:
        with self.lock:
            t = self.now()
            if item is None and self.events and self.events[-1]["end_s"] is None:
                self.events[-1]["end_s"] = t  # sequential: the previous object is done
            ev = {"start_s": t, "end_s": None, "phase": phase_of(kind), "kind": kind, "name": name}
            self.events.append(ev)
            if item is not None:
                self.open[item] = ev

    def cut(self) -> None:
        """The sequential object in progress is done (the parallel loop starts)."""
        with self.lock:
            if self.events and self.events[-1]["end_s"] is None and not self.open:
                self.events[-1]["end_s"] = self.now()

    def finish(self, item: str) -> None:
        with self.lock:
            ev = self.open.pop(item, None)
            if ev is not None:
                ev["end_s"] = self.now()

    def close(self, t_end: float) -> list[dict]:
        for ev in self.events:
            if ev["end_s"] is None:
                ev["end_s"] = t_end
        return self.events


_CREATING = re.compile(r"^pg_restore: (?:creating|executing) ([A-Z].*)$")
_DATA = re.compile(r'^pg_restore: processing data for table "([^"]+)"$')
_ITEM = re.compile(r"^pg_restore: (launching|finished) item (\d+) (.+)$")


def _pg_restore_line(line: str, tl: _Timeline, state: dict) -> None:
    # With --jobs, items are timed from "launching item" to "finished item"; the workers' own "creating ..." and
    # "processing data ..." lines inside the parallel loop would double-count them.
    if line.startswith("pg_restore: entering main parallel loop"):
        state["parallel"] = True
        tl.cut()
    elif line.startswith("pg_restore: finished main parallel loop"):
        state["parallel"] = False
    elif m := _ITEM.match(line):
        kind = toc_kind(m.group(3))
        if m.group(1) == "launching":
            tl.start(kind, m.group(3)[len(kind):].strip(), item=m.group(2))
        else:
            tl.finish(m.group(2))
    elif state.get("parallel") and (_DATA.match(line) or _CREATING.match(line)):
        pass
    elif m := _DATA.match(line):
        tl.start("TABLE DATA", m.group(1))
    elif (m := _CREATING.match(line)) and not m.group(1).startswith("SELECT "):
        kind = toc_kind(m.group(1))
        tl.start(kind, m.group(1)[len(kind):].strip().strip('"'))
    elif line.startswith("pg_restore: from TOC entry"):
        state["context"] = line.replace("pg_restore: ", "")
    elif line.startswith("pg_restore: error: "):
        message = line.replace("pg_restore: error: ", "").replace("could not execute query: ", "")
        if "could not execute query" in line:
            state["errors"].append({"message": message, "context": state.pop("context", "")})
        else:  # not a failed statement: the archive or the connection failed; pg_restore stops here
            state["fatal"] = message
    elif line.startswith("Command was: "):
        if state["errors"] and not state["errors"][-1]["context"].endswith("]"):
            state["errors"][-1]["context"] += f" [{line[13:][:160]}]"


_PSQL_ERROR = re.compile(r"^psql:<stdin>:(\d+): (ERROR|FATAL|error):\s+(.*)$")
_RESTRICTED = re.compile(r"^(backslash commands are restricted|\\unrestrict: )")


def _script_line(state: dict, psql_line: int) -> int:
    """The script's line number for psql's (psql counts opsbook's first line, not the lines left out)."""
    lines = state.get("psql_lines") or []
    return lines[psql_line - 1] if 0 < psql_line <= len(lines) else psql_line


def _psql_line(line: str, tl: _Timeline, state: dict) -> None:
    if m := _PSQL_ERROR.match(line):
        at = _script_line(state, int(m.group(1)))
        if state.get("refused"):
            return  # psql is being stopped: what it read after the refused line says nothing more
        if m.group(2) == "error" and _RESTRICTED.match(m.group(3)):  # the guard missed it, psql did not
            state["refused"] = (f"line {at}: psql refused a meta-command the guard did not see ({m.group(3)}); "
                                "it ran none: opsbook's \\restrict line held")
            state["fatal"] = f"refused, nothing more was run: {state['refused']}"
            state["proc"].kill()
            return
        entry = {"message": m.group(3), "context": f"line {at}"}
        if m.group(2) == "ERROR":
            state["errors"].append(entry)
        else:
            state["fatal"] = f"{m.group(3)} (line {at})"
    elif line.startswith("psql: error:"):
        state["fatal"] = line.replace("psql: error: ", "")
    elif state["errors"] and line.startswith(("DETAIL:", "CONTEXT:")):
        state["errors"][-1]["context"] += f" {line[:160]}"


# `-- Name: leads; Type: TABLE; Schema: public; Owner: postgres` and `-- Data for Name: leads; Type: TABLE DATA;`
_PLAIN_ITEM = re.compile(r"^-- (?:Data for )?Name: (.+?); Type: ([A-Z][A-Z ]*?); Schema: ([^;]+);")


_COPY = re.compile(rb"^COPY (\S+) ")


def _feed(backup: Backup, proc: subprocess.Popen, tl: _Timeline, state: dict, copy_only: str | None, guard) -> None:
    """Write the SQL script to psql, each line judged by `guard` first, stamping each object as its comment goes
    through the pipe; with `copy_only` ("schema.table"), the COPY blocks of every other table are left out. A
    refused line stops everything: psql is killed before it could read it. psql reads opsbook's \\restrict line
    first, so a meta-command the guard missed is refused by psql itself, and that stops everything too."""
    from .script import restrict_line  # noqa: PLC0415

    opener = gzip.open if backup.format == "plain.gz" else open
    skipping = False
    lines = state["psql_lines"]  # psql's line number - 1 -> the script's (0: opsbook's own first line)
    try:
        lines.append(0)
        proc.stdin.write(restrict_line(secrets.token_hex(32)))  # before any byte of the backup
        with opener(backup.path, "rb") as f:
            for raw in f:
                decision = guard.judge(raw)
                if decision.refusal is not None:
                    state["refused"] = str(decision.refusal)
                    state["fatal"] = f"refused, nothing more was run: {decision.refusal}"
                    proc.kill()
                    return
                if skipping:
                    skipping = raw not in (b"\\.\n", b"\\.\r\n")
                    continue
                if not decision.keep:
                    continue
                if raw.startswith(b"-- ") and (m := _PLAIN_ITEM.match(raw.decode("utf-8", "replace"))):
                    schema = m.group(3).strip()
                    tl.start(m.group(2), m.group(1) if schema == "-" else f"{schema}.{m.group(1)}")
                elif copy_only and (m := _COPY.match(raw)):
                    if m.group(1).decode("utf-8", "replace").replace('"', "") != copy_only:
                        skipping = True
                        continue
                lines.append(guard.lexer.number)
                proc.stdin.write(raw)
    except BrokenPipeError:
        pass  # psql went away; its stderr says why
    except (OSError, EOFError, zlib.error) as e:  # a gzip that is cut short or corrupt
        state["fatal"] = f"the SQL script could not be read to its end: {e}"
    finally:
        state["left_out"] = dict(guard.left_out)
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _watch(cmd, env, shown, parse_line, *, stdin_feed: Backup | None, timeout_s: float | None,
           copy_only: str | None = None, guard=None, as_account: bool = False) -> RestoreResult:
    tl = _Timeline()
    state: dict = {"errors": [], "fatal": None, "psql_lines": []}
    kw = {}
    if as_account:  # psql, the one tool with shell escapes, runs as the unprivileged server account
        from ..database.embedded import become_account  # noqa: PLC0415

        kw = {"preexec_fn": become_account(), "cwd": "/"}
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_feed else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, **kw)
    state["proc"] = proc
    feeder = None
    if stdin_feed is not None:
        feeder = threading.Thread(target=_feed, args=(stdin_feed, proc, tl, state, copy_only, guard), daemon=True)
        feeder.start()
    reader = threading.Thread(target=_read_stderr, args=(proc, tl, state, parse_line), daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        if proc.poll() is None:  # timed out, or interrupted (KeyboardInterrupt in a notebook): stop it
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    if feeder is not None:
        feeder.join(timeout=10)
    t_end = tl.now()
    events = tl.close(t_end)
    fatal = state["fatal"]
    if timed_out:
        fatal = f"the restore did not finish within {timeout_s / 60:.0f} min and was stopped"
    elif proc.returncode != 0 and not state["errors"] and not fatal:
        fatal = f"{Path(cmd[0]).name} exited with status {proc.returncode}"
    return RestoreResult(shown, proc.returncode, t_end, events, state["errors"], fatal and redact_sql(fatal), timed_out,
                         state.get("refused"), state.get("left_out", {}))


def _read_stderr(proc, tl: _Timeline, state: dict, parse_line) -> None:
    for raw in proc.stderr:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line:
            parse_line(line, tl, state)
