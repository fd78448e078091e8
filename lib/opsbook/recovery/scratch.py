"""Where a restore goes: a throwaway cluster made for the run (the default), or a fresh opsbook_* database on a
server the configuration marks `scratch = true`; either way gone when the run ends."""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..core.errors import OpsbookError
from .restore import is_scratch_name, scratch_name
from ..core.redact import redact_sql
from ..database.clientenv import child_env
from ..database.session import conninfo_of
from .tools import with_dbname

ADVISORY_CLASS = 0x6F70  # "op": the high half of the advisory-lock key a scratch database's owner holds
ORPHAN_AGE_S = 24 * 3600  # a scratch database nobody holds is dropped once older than any run may take
JOBS_SHARE = 4  # parallel restore uses at most a quarter of the restore server's free connection slots


@dataclass
class Scratch:
    """The scratch database of one run and everything the report says about it."""

    name: str
    conninfo: str  # as the role that restores
    admin_conninfo: str
    label: str  # where, safe to show
    kind: str  # cluster | database
    role: str
    role_is_superuser: bool
    created_at: dt.datetime
    data_dir: Path | None = None
    cluster: object = None  # sandbox.ScratchCluster
    dropped: bool = False
    drop_error: str | None = None
    dropped_orphans: list[dict] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # unowned, too young to drop for sure
    as_superuser: list[str] = field(default_factory=list)  # what opsbook itself did as superuser, and why
    precreated_schemas: set[str] = field(default_factory=set)
    skip_extensions: bool = False
    list_file: str | None = None  # pg_restore -L: the archive's entries minus what was made beforehand
    run_as_account: bool = False  # psql runs as the unprivileged server account (when opsbook is root)
    encoding: str | None = None  # the dump's, when the scratch database was made in it (SQL_ASCII, LATIN1 ...)
    _owner: object = None  # the session holding the advisory lock (database kind)
    _tmp: str | None = None

    def contained(self) -> str:
        """One sentence for the report: where the backup's contents ran, and as whom."""
        who = f"role {self.role} ({'a superuser' if self.role_is_superuser else 'not a superuser'})"
        if self.kind == "cluster":
            text = (f"Restored as {who} into {self.name}, in a throwaway PostgreSQL cluster made for this run "
                    "(Unix socket only, no TCP, nothing else in it), deleted afterwards")
        else:
            text = (f"Restored as {who} into the fresh database {self.name} on {self.label}, a server marked "
                    "scratch = true; nothing else there is touched")
        if self.as_superuser:
            text += "; as superuser opsbook itself did only: " + "; ".join(self.as_superuser)
        if self.encoding:
            text += f"; in the dump's encoding, {self.encoding}"
        return text + "."

    def jobs_cap(self, jobs: int) -> tuple[int, str | None]:
        """`jobs` bounded by the cores and a small share of the server's free connection slots."""
        from ..database.session import raw_connect  # noqa: PLC0415

        cores = os.cpu_count() or 1
        try:
            with raw_connect(self.admin_conninfo, statement_timeout_ms=10_000) as conn:
                (free,) = conn.execute(
                    "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')"
                    "::int - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')").fetchone()
        except Exception:  # noqa: BLE001 - cannot tell: be modest
            free = 4
        share = max(1, int(free) // JOBS_SHARE)
        capped = max(1, min(int(jobs), cores, share))
        if capped == jobs:
            return capped, None
        return capped, (f"jobs={jobs} lowered to {capped}: at most the {cores} core(s) here and a quarter of the "
                        f"restore server's {free} free connection slots")


def _advisory_key(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)  # the low half of the key


@contextlib.contextmanager
def open_scratch(config, restore_target: str | None, live, purpose: str, bindir: Path | None = None
                 ) -> Iterator[Scratch]:
    """The scratch for one run; deleted whatever happens inside (exceptions, KeyboardInterrupt). A throwaway
    cluster runs on the server binaries in `bindir` (default: the embedded ones)."""
    if restore_target:
        with _on_server(config, restore_target, live, purpose) as s:
            yield s
        return
    from ..database.sandbox import throwaway_cluster  # noqa: PLC0415
    from ..database.sandbox.cluster import RESTORE_ROLE  # noqa: PLC0415

    name = scratch_name(purpose)
    scratch = None
    try:
        with throwaway_cluster(name, purpose, bindir) as cluster:
            scratch = Scratch(name, cluster.conninfo(name, RESTORE_ROLE), cluster.conninfo(), "a throwaway cluster",
                              "cluster", RESTORE_ROLE, False, dt.datetime.now(dt.timezone.utc), cluster.directory,
                              cluster, dropped_orphans=[{**o, "where": "scratch cluster"} for o in
                                                        cluster.dropped_orphans],
                              run_as_account=os.geteuid() == 0)
            try:
                yield scratch
            finally:
                if scratch._tmp:
                    import shutil  # noqa: PLC0415

                    shutil.rmtree(scratch._tmp, ignore_errors=True)
    finally:
        if scratch is not None:
            scratch.dropped = bool(cluster.destroyed) if scratch.cluster else False
            if not scratch.dropped:
                scratch.drop_error = f"the scratch cluster in {cluster.directory} could not be deleted"


def restore_target_server(config, restore_target: str, live):
    """The configured target that receives the scratch database: only one marked `scratch = true`, never the
    live target's own server."""
    from .runbook import _server_of  # noqa: PLC0415

    t = config.target(restore_target)
    if not t.extra.get("scratch"):
        raise OpsbookError(f"restore_target {t.name!r} is not marked `scratch = true` in opsbook.toml: a restore "
                           "runs the backup's contents there; leave restore_target empty to restore into a "
                           "throwaway cluster opsbook makes for the run")
    if t.embedded:
        raise OpsbookError("restore_target cannot be the embedded demo server, which holds your demo database; "
                           "leave it empty to restore into a throwaway cluster")
    same_server = live is not None and _server_of(t) is not None and _server_of(t) == _server_of(live)
    if live is not None and (t.name == live.name or same_server):
        raise OpsbookError(f"restore_target {t.name!r} is the server of the live target {live.name!r}: "
                           "scratch restores go to another server (default: a throwaway cluster)")
    return t


@contextlib.contextmanager
def _on_server(config, restore_target: str, live, purpose: str) -> Iterator[Scratch]:
    """CREATE DATABASE opsbook_<purpose>_<time> on a scratch = true server, held by an advisory lock for as long as
    the run lives (so a run beside it never takes it for an orphan); DROP ... WITH (FORCE) at the end."""
    from ..database.session import raw_connect  # noqa: PLC0415

    t = restore_target_server(config, restore_target, live)
    admin = with_dbname(conninfo_of(t), "postgres")
    name = scratch_name(purpose)
    owner = raw_connect(admin, read_only=False, statement_timeout_ms=120_000)
    try:
        owner.execute("SELECT pg_advisory_lock(%s::bigint << 32 | %s::bigint)", (ADVISORY_CLASS, _advisory_key(name)))
        role, superuser = owner.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        dropped, leftovers = _sweep_databases(owner)
        owner.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        scratch = Scratch(name, with_dbname(admin, name), admin, f"target {t.name} ({t.display()})", "database",
                          role, bool(superuser), dt.datetime.now(dt.timezone.utc), dropped_orphans=dropped,
                          leftovers=leftovers, _owner=owner)
        try:
            yield scratch
        finally:
            try:
                dbid = owner.execute("SELECT oid FROM pg_catalog.pg_database WHERE datname = %s", (name,)).fetchone()
                owner.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                scratch.dropped = True
                if dbid:
                    _forget_statements(owner, dbid[0])
            except Exception as e:  # noqa: BLE001 - reported as a finding with the command to drop it
                scratch.drop_error = redact_sql(" ".join(str(e).split()))
    finally:
        owner.close()


def _forget_statements(conn, dbid: int) -> None:
    """Drop the restore's entries from the restore target's pg_stat_statements, where this role may: they outlive
    the scratch database, and a text in its encoding (a SQL_ASCII dump's latin-1 names) would make every later
    read of the view's texts in a UTF8 database fail. Asked of the catalogue first, so nothing is tried that would
    write an ERROR line; where the role may not, the entries age out (pg_stat_statements.max)."""
    row = conn.execute(
        "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
        "JOIN pg_catalog.pg_proc p ON p.pronamespace = e.extnamespace AND p.proname = 'pg_stat_statements_reset' "
        "WHERE e.extname = 'pg_stat_statements' AND p.pronargs >= 3 "
        "AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE') LIMIT 1").fetchone()
    if row:
        conn.execute(f"SELECT {row[0]}.pg_stat_statements_reset(0, %s::oid, 0)", (dbid,))


def _sweep_databases(conn) -> tuple[list[dict], list[str]]:
    """Scratch databases on this server whose owner session is gone: dropped when older than ORPHAN_AGE_S
    (reported), listed when younger (a run may have just ended; the next run decides)."""
    rows = conn.execute("SELECT datname, pg_database_size(oid) FROM pg_database WHERE datname LIKE 'opsbook\\_%%'")
    dropped, young = [], []
    now = dt.datetime.now(dt.timezone.utc)
    for datname, size in rows.fetchall():
        if not is_scratch_name(datname):
            continue
        (held,) = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s "
            "AND objid = %s AND objsubid = 1)", (ADVISORY_CLASS, _advisory_key(datname))).fetchone()
        if held:
            continue  # a live run's
        stamp = dt.datetime.strptime(datname.split("_", 2)[2][:15], "%Y%m%d_%H%M%S").replace(tzinfo=dt.timezone.utc)
        if (now - stamp).total_seconds() > ORPHAN_AGE_S:
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)')
                dropped.append({"name": datname, "size_bytes": int(size), "where": "scratch database",
                                "why": "no run holds it and it is older than 24 h"})
            except Exception:  # noqa: BLE001 - listed instead
                young.append(datname)
        else:
            young.append(datname)
    return dropped, young


# ------------------------------------------------------------------------------------------ before the restore
def prepare(scratch: Scratch, backup, client, live_session=None, plain_extensions=()) -> None:
    """In a throwaway cluster: the roles live objects name (NOLOGIN, no privileges: policies and grants need them
    to exist) and the extensions the backup creates, made by opsbook as superuser from the installed binaries, so
    the backup itself runs as a role that is not a superuser. Either kind: the scratch database in the dump's
    encoding."""
    if scratch.kind != "cluster":
        scratch.cluster = None
        _match_encoding(scratch, backup)
        return
    from ..database.session import raw_connect  # noqa: PLC0415
    from .compare import quote_ident  # noqa: PLC0415

    roles = []
    if live_session is not None:
        with contextlib.suppress(Exception):
            roles = list(live_session.query("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1")
                         ["rolname"])
    scratch.cluster.make_database(scratch.name, roles)
    _match_encoding(scratch, backup)
    if roles:
        scratch.as_superuser.append(f"created {len(roles)} role(s) named as live has them, NOLOGIN and without "
                                    "privileges, so policies and grants find them")
    extensions = list(plain_extensions) if not backup.is_archive else _archive_extensions(backup, client, scratch)
    made, failed = [], []
    with raw_connect(scratch.cluster.conninfo(scratch.name), read_only=False, statement_timeout_ms=120_000) as conn:
        # an extension without a schema of its own goes where a restore expects it, public; nothing of the backup
        # is in this fresh database yet, so no code of its own can meet this path
        conn.execute("SELECT pg_catalog.set_config('search_path', 'public', false)")
        for ext, schema in extensions:
            try:
                if schema and schema not in ("public", "pg_catalog"):
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)} AUTHORIZATION "
                                 f"{quote_ident(scratch.role)}")
                    scratch.precreated_schemas.add(schema)
                conn.execute(f"CREATE EXTENSION IF NOT EXISTS {quote_ident(ext)}"
                             + (f" WITH SCHEMA {quote_ident(schema)}" if schema else "") + " CASCADE")
                made.append(ext)
            except Exception as e:  # noqa: BLE001 - the restore then reports what depends on it
                failed.append(f"{ext} ({' '.join(str(e).split())[:120]})")
    scratch.skip_extensions = True
    if made:
        scratch.as_superuser.append(f"created extension(s) {', '.join(made)} from the installed PostgreSQL, not "
                                    "from the backup")
    if failed:
        scratch.as_superuser.append(f"could not create extension(s) {'; '.join(failed)}")
    if backup.is_archive:
        _write_list(backup, client, scratch)


def _match_encoding(scratch: Scratch, backup) -> None:
    """Make the (still empty) scratch database anew in the dump's encoding when it is not the default: a SQL_ASCII
    dump holds bytes a UTF8 database refuses ('invalid byte sequence'), and each refused statement takes its table
    with it."""
    from ..database.session import raw_connect  # noqa: PLC0415
    from .compare import quote_ident  # noqa: PLC0415
    from .encoding import create_options, scratch_encoding  # noqa: PLC0415

    encoding = scratch_encoding(getattr(backup, "encoding", None))
    if encoding is None:
        return
    name = quote_ident(scratch.name)
    if scratch.kind == "cluster":
        from ..database.sandbox.cluster import RESTORE_ROLE  # noqa: PLC0415

        with raw_connect(scratch.admin_conninfo, read_only=False, statement_timeout_ms=60_000) as conn:
            conn.execute(f"DROP DATABASE {name}")
            conn.execute(f"CREATE DATABASE {name} OWNER {RESTORE_ROLE} TEMPLATE template0"
                         + create_options(encoding, conn.info.server_version))
    else:
        conn = scratch._owner  # holds the run's advisory lock on this name throughout
        (current,) = conn.execute("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = %s",
                                  (scratch.name,)).fetchone()
        if current == encoding:
            return
        conn.execute(f"DROP DATABASE {name}")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0" + create_options(encoding, conn.info.server_version))
    scratch.encoding = encoding


def _archive_extensions(backup, client, scratch: Scratch) -> list[tuple[str, str]]:
    """(extension, schema) for each EXTENSION entry, from the archive's own CREATE EXTENSION statements."""
    from .script import _EXTENSION, unquote  # noqa: PLC0415

    listing = _list(backup, client)
    only = [line for line in listing.splitlines() if " EXTENSION " in line and not line.startswith(";")
            and " COMMENT " not in line]
    if not only:
        return []
    scratch._tmp = scratch._tmp or tempfile.mkdtemp(prefix="opsbook-list-")
    path = Path(scratch._tmp) / "extensions.list"
    path.write_text("\n".join(only) + "\n")
    out = subprocess.run([client.path("pg_restore"), "-L", str(path), "-f", "-", str(backup.path)],
                         capture_output=True, text=True, errors="replace", env=child_env())
    found = []
    for line in out.stdout.splitlines():
        if m := _EXTENSION.match(line.strip().rstrip(";")):
            found.append((unquote(m.group(1)), unquote(m.group(2)) if m.group(2) else ""))
    return found


def _list(backup, client) -> str:
    out = subprocess.run([client.path("pg_restore"), "--list", str(backup.path)], capture_output=True, text=True,
                         errors="replace", env=child_env())
    return out.stdout


def _write_list(backup, client, scratch: Scratch) -> None:
    """pg_restore -L: every entry but the extensions (made beforehand), their comments, and the schemas made for
    them."""
    from .archive import split_toc_desc  # noqa: PLC0415

    keep = []
    for line in _list(backup, client).splitlines():
        if line.startswith(";") or not line.strip():
            keep.append(line)
            continue
        desc = line.split(" ", 3)[3] if line.count(" ") >= 3 else ""
        entry = split_toc_desc(desc)
        if entry["kind"] == "EXTENSION" or (entry["kind"] == "COMMENT" and desc.startswith("COMMENT - EXTENSION ")):
            continue
        if entry["kind"] == "SCHEMA" and (entry["name"] in scratch.precreated_schemas):
            continue
        keep.append(line)
    scratch._tmp = scratch._tmp or tempfile.mkdtemp(prefix="opsbook-list-")
    path = Path(scratch._tmp) / "restore.list"
    path.write_text("\n".join(keep) + "\n")
    scratch.list_file = str(path)
