"""ensure_demo_database(): build the demo database once, in a staging database renamed into place when complete."""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg import sql

from ...config.file import DEMO_DATABASE
from ...core.errors import OpsbookError
from . import faults, workload

# Bump when the schema, data or problems change: a demo built by another version is rebuilt on first use.
BUILD_VERSION = 3
MARKER = "opsbook demo database "  # COMMENT ON DATABASE: this prefix, then the build's stats as JSON
LOCK_KEY = 7_261_737_263  # pg_try_advisory_lock key (in the `postgres` database) serialising builds
LOCK_WAIT_S = 900
STAGING = f"{DEMO_DATABASE}__build"  # built here, renamed to DEMO_DATABASE when complete
SQL_FILES = tuple(sorted(Path(__file__).parent.glob("[0-9][0-9]_*.sql")))
SCHEMAS = ("public", "auth", "storage")

Progress = Callable[[str], None]


def ensure_demo_database(server=None, *, rebuild: bool = False, progress: Progress | None = None) -> dict:
    """Create and build the `demo` database on `server` (default: the embedded default server, started if needed).

    Idempotent: when a complete build of this version is there, returns its stats at once (`built` False). The
    build happens in a staging database renamed into place when complete, so a build killed half-way leaves
    only that staging database (and the demo as it was): the next call drops it, and builds if no complete
    demo is there. Two callers at once are serialised by an advisory lock; the second finds the first's
    result. `rebuild=True` builds anew and replaces the demo at the end. The data is deterministic (every value derives from a row number through a fixed hash),
    while times are relative to the build's now() so that freshness and monthly activity look current.
    Returns {database, tables, rows, row_counts, size_bytes, build_seconds, built_at, built, seconds, ...}.
    """
    started = time.perf_counter()
    say = progress or (lambda line: None)
    if server is None:
        from ..embedded import default_server  # noqa: PLC0415 - keep `import opsbook.database.demo` light

        server = default_server()
    if server.running_pid() is None:
        server.start()
    with psycopg.connect(server.conninfo(), autocommit=True) as admin:
        stats = None if rebuild else read_marker(admin)
        if stats is not None:
            _drop_leftover(admin)
        else:
            with _build_lock(admin, say):
                stats = None if rebuild else read_marker(admin)  # someone else may have built it meanwhile
                if stats is None:
                    stats = _build(server, admin, say)
                    stats["built"] = True
    stats.setdefault("built", False)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    return stats


def read_marker(admin: psycopg.Connection, name: str = DEMO_DATABASE) -> dict | None:
    """The stats of a complete build of this version, from the database comment; None when absent or stale."""
    row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                        (name,)).fetchone()
    if not row or not row[0] or not row[0].startswith(MARKER):
        return None
    try:
        stats = json.loads(row[0][len(MARKER):])
    except ValueError:
        return None
    return stats if stats.get("version") == BUILD_VERSION else None


def _drop_leftover(admin: psycopg.Connection) -> None:
    """Drop the staging database of a build that was killed, unless a build is running right now."""
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (STAGING,)).fetchone():
        return
    if admin.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(STAGING)))
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


@contextlib.contextmanager
def _build_lock(admin: psycopg.Connection, say: Progress):
    """A session advisory lock, polled (a blocked waiter would show up in other people's lock diagnostics)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    told = False
    while not admin.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
        if time.monotonic() > deadline:
            raise OpsbookError(f"another process has been building the demo database for over {LOCK_WAIT_S} s")
        if not told:
            say("demo: another process is building the demo database; waiting for it")
            told = True
        time.sleep(0.5)
    try:
        yield
    finally:
        admin.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _build(server, admin: psycopg.Connection, say: Progress) -> dict:
    t_build = time.perf_counter()
    staging = STAGING
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staging)))
    admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(staging)))
    anchor = admin.execute("SELECT now()").fetchone()[0]
    say(f"demo: building database {DEMO_DATABASE!r} ({len(SQL_FILES)} SQL steps, workload, faults)")
    conninfo = server.conninfo(dbname=staging)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # the build itself stays out of pg_stat_statements: only the app workload below is recorded there
        conn.execute("SET TimeZone = 'UTC'; SET maintenance_work_mem = '256MB'; SET synchronous_commit = off; "
                     "SET pg_stat_statements.track = 'none'")
        for path in SQL_FILES:
            with _step(say, path.name):
                _run_sql_file(conn, path, anchor)
        with _step(say, "the load's write counters forgotten") as note:
            note["detail"] = forget_load(conn, conninfo)
        with _step(say, "vacuum analyze (all tables but the never-analyzed one)"):
            faults.analyze(conn)
        with _step(say, "app workload recorded in pg_stat_statements") as note:
            note["detail"] = workload.run(conn, conninfo)
        with _step(say, "row counts"):
            row_counts = count_rows(conn)
        with _step(say, "deliberate problems (invalid index, replication slot, dead tuples)") as note:
            note["detail"] = faults.inject(conn)
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    stats = {
        "version": BUILD_VERSION,
        "database": DEMO_DATABASE,
        "tables": len(row_counts),
        "rows": sum(row_counts.values()),
        "row_counts": row_counts,
        "size_bytes": size,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - t_build, 1),
    }
    comment = MARKER + json.dumps(stats, sort_keys=True)
    admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(staging), sql.Literal(comment)))
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DEMO_DATABASE)))
    admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staging),
                                                                  sql.Identifier(DEMO_DATABASE)))
    say(f"demo: ready: {stats['tables']} tables, {stats['rows']:,} rows, {size / 2**20:,.0f} MB "
        f"in {stats['build_seconds']} s")
    return stats


@contextlib.contextmanager
def _step(say: Progress, what: str):
    t0 = time.perf_counter()
    note: dict = {}
    yield note
    detail = f": {note['detail']}" if note.get("detail") else ""
    say(f"demo: {what}{detail} ({time.perf_counter() - t0:.1f} s)")


def _run_sql_file(conn: psycopg.Connection, path: Path, anchor: datetime) -> None:
    """One file, one transaction; __NOW__ becomes the build's anchor time."""
    text = path.read_text().replace("__NOW__", f"'{anchor.isoformat()}'::timestamptz")
    with conn.transaction():
        conn.execute(text)


FLUSH_WAIT_S = 30


def forget_load(conn: psycopg.Connection, conninfo: str) -> str:
    """Reset the tables' write counters after the bulk load, as an operator does after loading: the demo's
    counters then hold the app's writes only (query-tuning weighs an index's write cost by them, and a load counted
    as a month of inserts prices every index out). The table left never analyzed keeps its counts. The load's
    counts reach the shared statistics some time after its statements; wait (with a deadline) until every table
    shows at least its rows as inserted, so the reset does not run before them."""
    counts = count_rows(conn)
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")
    deadline, arrived = time.monotonic() + FLUSH_WAIT_S, False
    with psycopg.connect(conninfo, autocommit=True) as watch:
        while not arrived and time.monotonic() < deadline:
            watch.execute("SELECT pg_stat_clear_snapshot()")
            seen = dict(watch.execute("SELECT schemaname || '.' || relname, n_tup_ins FROM pg_stat_user_tables "
                                      "WHERE schemaname = ANY(%s)", (list(SCHEMAS),)).fetchall())
            arrived = all(seen.get(t, 0) >= n for t, n in counts.items())
            if not arrived:
                time.sleep(0.2)
    reset = conn.execute("SELECT count(pg_stat_reset_single_table_counters(c.oid)) FROM pg_class c "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = ANY(%s) "
                         "AND NOT (n.nspname = 'public' AND c.relname = %s)",
                         (list(SCHEMAS), faults.NEVER_ANALYZED)).fetchone()[0]
    return f"{reset} tables" + ("" if arrived else f" (the load's counts had not all arrived in {FLUSH_WAIT_S} s)")


def count_rows(conn: psycopg.Connection) -> dict[str, int]:
    """Exact row counts of every table in the app's schemas, as {'schema.table': n}."""
    tables = conn.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) ORDER BY 1, 2",
                          (list(SCHEMAS),)).fetchall()
    return {f"{s}.{t}": conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(s), sql.Identifier(t))
                                     ).fetchone()[0] for s, t in tables}


def ensure_demo_server():
    """Start the embedded server and build the demo database if it is absent, so that a runbook opened in
    JupyterLab against `demo` just works (the first build takes about half a minute; later calls return at once)."""
    import sys  # noqa: PLC0415

    from ..embedded import default_server  # noqa: PLC0415

    server = default_server()
    server.start()
    ensure_demo_database(server=server, progress=lambda line: print(line, file=sys.stderr))
    return server
