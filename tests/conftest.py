"""Real PostgreSQL servers for the suite: the embedded one always, Debian's PostgreSQL 15 when present."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from opsbook.config.file import from_dict
from opsbook.database.embedded import EmbeddedServer, default_server

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
ROOT = Path(__file__).resolve().parents[1]
# Variables that steer the suite itself (kept); every other OPSBOOK_* and PG* variable of the caller is dropped
SUITE_CONTROLS = {"OPSBOOK_TEST_HOME", "OPSBOOK_MATRIX", "OPSBOOK_MATRIX_FULL", "OPSBOOK_MATRIX_REPORT",
                  "OPSBOOK_PG_CACHE", "OPSBOOK_LAB_TEST", "OPSBOOK_KEEP_FACTORY_LOG", "OPSBOOK_SCREENSHOTS"}
TEST_SETTINGS = {"max_connections": "60", "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def pytest_configure(config):
    """The suite's own OPSBOOK_HOME: the default (demo) server in tests is a throwaway one, never the user's.

    Kernels started by the runner or nbval inherit it, so they use the same server and the same demo database.
    """
    for name in [n for n in os.environ if n.startswith(("OPSBOOK_", "PG")) and n not in SUITE_CONTROLS]:
        del os.environ[name]  # the user's configuration, service socket, libpq defaults: never the suite's
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # one of `make test`'s parallel workers: its own temporary folder and home, servers and kernels
        tmp = tempfile.mkdtemp(prefix=f"opsbook-{worker}-")
        os.chmod(tmp, 0o711)  # as root, the server account traverses it to its data directory
        os.environ["TMPDIR"] = tempfile.tempdir = tmp
        os.environ.pop("OPSBOOK_TEST_HOME", None)
        config._opsbook_tmp = tmp
    if not os.environ.get("OPSBOOK_TEST_HOME"):
        home = tempfile.mkdtemp(prefix="opsbook-test-")
        os.environ["OPSBOOK_TEST_HOME"] = home
        config._opsbook_home = home
    os.environ["OPSBOOK_HOME"] = os.environ["OPSBOOK_TEST_HOME"]
    os.environ["OPSBOOK_STRICT"] = "1"  # a check's unexpected error fails the test instead of becoming a finding


# The longest files, started first so that `make test`'s two workers do not end on one of them alone
LONGEST_FIRST = ("test_matrix.py", "test_make_demo.py", "test_hostile_role.py", "test_quiet_server.py",
                 "test_pooler.py", "test_containment.py", "test_fleet.py", "test_demo.py", "test_notebooks.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def pytest_unconfigure(config):
    home = getattr(config, "_opsbook_home", None)
    if home:
        try:
            default_server().stop()
        finally:
            shutil.rmtree(home, ignore_errors=True)
    if getattr(config, "_opsbook_tmp", None):
        shutil.rmtree(config._opsbook_tmp, ignore_errors=True)


def unprivileged_home(tmp_path: Path, user: str = "opsbook-tester"):
    """(passwd entry, home) of a plain system account (created once) that can reach python, the code and its own
    home under tmp_path: for the root-only tests that prove the unprivileged path."""
    import pwd
    import sys

    from opsbook.database.embedded import ensure_system_account

    ensure_system_account(user)
    pw = pwd.getpwnam(user)
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, pw.pw_uid, pw.pw_gid)
    for path in (home, Path(sys.executable).resolve(), ROOT):  # the account must reach python, the code, its dir
        for parent in path.parents:
            parent.chmod(parent.stat().st_mode | 0o001)
    return pw, home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(tmp_path_factory, name: str, bindir: Path | None = None, **settings) -> EmbeddedServer:
    # under the suite's home, not /tmp/pytest-of-*: a concurrent pytest resets that folder to 0700, which locks
    # the server account out of its own data directory
    home = Path(os.environ["OPSBOOK_HOME"])
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=home)) / "data", bindir=bindir,
                            port=free_port(),
                            settings={**TEST_SETTINGS, **settings})
    server.start()
    return server


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    """The embedded PostgreSQL 18 for fault tests: a clean cluster, never the demo's (whose deliberate problems,
    like its replication slot, are cluster-wide)."""
    server = _server(tmp_path_factory, "pg-18")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_server():
    """The `demo` target's server: `default_server()` under the suite's OPSBOOK_HOME, so runbooks run by the
    runner or nbval against `demo` meet the same server and the same demo database as the tests."""
    server = default_server()
    if not server.initialized:
        server.configure(**TEST_SETTINGS)
    server.start()
    yield server


@pytest.fixture(scope="session")
def pg15(tmp_path_factory):
    """Debian's PostgreSQL 15, when the machine has it (never required)."""
    if not (PG15_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 binaries not present at /usr/lib/postgresql/15/bin (optional second version)")
    server = _server(tmp_path_factory, "pg-15", bindir=PG15_BIN)
    yield server
    server.stop()


@pytest.fixture(params=["embedded", "pg15"])
def any_pg(request):
    """Each available server version in turn."""
    return request.getfixturevalue("pg" if request.param == "embedded" else "pg15")


API_ROLES = ("anon", "authenticated", "service_role")  # Supabase's API roles


@contextlib.contextmanager
def api_roles_on(server):
    """anon/authenticated/service_role in the server's cluster (roles are cluster-wide) for as long as the block
    runs; the ones it made are dropped afterwards, so that the plain-database tests meet a server without them."""
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        made = [r for r in API_ROLES if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,)).fetchone()]
        for r in made:
            c.execute(f"CREATE ROLE {r} NOLOGIN NOINHERIT")
    try:
        yield server
    finally:
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            for r in made:
                c.execute(f"DROP ROLE IF EXISTS {r}")


@pytest.fixture
def api_roles(any_pg):
    """Each server version in turn, with the API roles for one test."""
    with api_roles_on(any_pg) as server:
        yield server


class Database:
    """A scratch database on a test server, with helpers to make real connections into it."""

    def __init__(self, server: EmbeddedServer, name: str):
        self.server, self.name = server, name
        self.conninfo = server.conninfo(dbname=name)
        self._conns: list[psycopg.Connection] = []

    def connect(self, autocommit: bool = True, **kw) -> psycopg.Connection:
        conn = psycopg.connect(self.conninfo, autocommit=autocommit, **kw)
        self._conns.append(conn)
        return conn

    def execute(self, sql: str, params=None):
        with psycopg.connect(self.conninfo, autocommit=True) as c:
            cur = c.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def config(self, **target):
        """An opsbook Config whose target `test` points here, with a history store of its own: the built-in one
        lives under the suite's OPSBOOK_HOME, where another test's snapshots of its own `test` would become this
        database's history (and, say, its deadlock count over the run's window)."""
        history = Path(tempfile.mkdtemp(prefix=f"history-{self.name}-", dir=os.environ["OPSBOOK_HOME"]))
        return from_dict({"targets": {"test": {"dsn": self.conninfo, **target}},
                          "history": {"url": f"sqlite:///{history / 'history.sqlite'}"}})

    def close(self) -> None:
        for c in self._conns:
            try:
                c.cancel_safe(timeout=2)
            except Exception:
                pass
            c.close()


def make_database(server: EmbeddedServer) -> Database:
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return Database(server, name)


def drop_database(db: Database) -> None:
    db.close()
    with psycopg.connect(db.server.conninfo(), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


@pytest.fixture
def db(pg):
    """A fresh database on the embedded server, dropped afterwards."""
    d = make_database(pg)
    yield d
    drop_database(d)


@pytest.fixture
def any_db(any_pg):
    """A fresh database on each available server version."""
    d = make_database(any_pg)
    yield d
    drop_database(d)


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    """No test reads the developer's opsbook.toml, ~/.pgpass or OPSBOOK_* settings by accident."""
    for var in ("OPSBOOK_CONFIG", "OPSBOOK_RUN_RECORD", "PGPASSWORD", "PGSERVICE", "PGHOST", "PGPORT", "PGUSER",
                "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def demo_database(demo_server):
    """The demo database, built once per run (seeded, so always the same rows).

    The first build always meets what a killed earlier build leaves behind (an abandoned staging database and a
    `demo` from an older builder version) and two callers at once, so tests/test_demo.py can check both."""
    from opsbook.database.demo import ensure_demo_database
    from opsbook.database.demo.build import MARKER, STAGING, read_marker
    from opsbook.config.file import DEMO_DATABASE

    with psycopg.connect(demo_server.conninfo(), autocommit=True) as admin:
        planted = read_marker(admin) is None
        if planted:
            for name in (STAGING, DEMO_DATABASE):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{name}"')
            admin.execute(f"""COMMENT ON DATABASE "{DEMO_DATABASE}" IS '{MARKER}{{"version": 0}}'""")
    results: list = [None, None]
    lines: list[str] = []

    def call(i: int) -> None:
        try:
            results[i] = ensure_demo_database(server=demo_server, progress=lines.append)
        except Exception as e:  # noqa: BLE001 - re-raised below
            results[i] = e

    t0 = time.perf_counter()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, Exception):
            raise r
    stats = next((r for r in results if r["built"]), results[0])
    return {"stats": stats, "results": results, "planted": planted, "lines": lines, "server": demo_server,
            "wall_s": time.perf_counter() - t0}


from incident import incident_log, incident_log_15  # noqa: E402,F401 - the recorded-incident server (tests/incident.py)
