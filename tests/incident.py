"""The recorded-incident server for the log and post-mortem tests: a real server logging csvlog, jsonlog and
stderr at once, and one real incident played on it (opsbook.database.demo.incident)."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from opsbook.database.demo.incident import LOG_SETTINGS, Incident, run_incident
from opsbook.database.embedded import EmbeddedServer

MARKER = "opsbook-test-incident-over"


@dataclass
class IncidentLog:
    server: EmbeddedServer
    dbname: str
    incident: Incident
    log_dir: Path
    prefix: str
    config: object  # opsbook Config: target `shop`, the history store the sampler wrote, a reports folder
    start: float  # epoch seconds: the first sample, just before the incident
    end: float  # just after the last sample

    @property
    def conninfo(self) -> str:
        return self.server.conninfo(dbname=self.dbname)

    def file(self, ext: str) -> Path:
        return self.log_dir / f"postgresql.{ext}"


def freeze_logs(server: EmbeddedServer, into: Path) -> Path:
    """A copy of the three log files as they stand once the incident is over. A stop makes every backend write its
    last lines (a disconnection is logged when a backend exits, after its client has gone) and the collector flush
    them all; the copy is then final, whatever later tests do on the restarted server."""
    logs = [server.data_dir / "log" / f"postgresql.{ext}" for ext in ("log", "csv", "json")]
    shut = "database system is shut down"
    before = [f.read_text(errors="replace").count(shut) for f in logs]
    server.stop()
    # the logger outlives the postmaster by a moment: wait for the shutdown line in every format
    deadline = time.monotonic() + 20
    while not all(f.read_text(errors="replace").count(shut) > n for f, n in zip(logs, before, strict=True)):
        assert time.monotonic() < deadline, f"the shutdown never reached every log in {logs[0].parent}"
        time.sleep(0.05)
    into.mkdir()
    for ext in ("log", "csv", "json"):
        shutil.copy2(server.data_dir / "log" / f"postgresql.{ext}", into / f"postgresql.{ext}")
    server.start()
    return into


def wait_logged(log_dir: Path, marker: str, timeout: float = 20) -> None:
    """The logging collector writes asynchronously: wait until every format holds the marker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(marker in (log_dir / f"postgresql.{e}").read_text(errors="replace")
               for e in ("log", "csv", "json") if (log_dir / f"postgresql.{e}").exists()) and \
                len(list(log_dir.glob("postgresql.*"))) == 3:
            return
        time.sleep(0.05)
    raise AssertionError(f"{marker!r} never reached the logs in {log_dir}")


def log_marker(conninfo: str, marker: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f"DO $$BEGIN RAISE LOG '{marker}'; END$$")


@pytest.fixture(scope="session")
def incident_log():
    """One incident on its own logging server (max_connections 20), played once per test run."""
    yield from _incident_log(None)


@pytest.fixture(scope="session")
def incident_log_15():
    """The same incident on Debian's PostgreSQL 15 (its jsonlog is the first), when the machine has it."""
    from conftest import PG15_BIN  # noqa: PLC0415

    if not (PG15_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 binaries not present at /usr/lib/postgresql/15/bin (optional second version)")
    yield from _incident_log(PG15_BIN)


def _incident_log(bindir):
    from conftest import TEST_SETTINGS, free_port  # noqa: PLC0415

    home = Path(os.environ["OPSBOOK_HOME"])
    settings = {**TEST_SETTINGS, **LOG_SETTINGS}
    if bindir is not None:
        settings["shared_preload_libraries"] = "''"  # Debian's 15 has no pg_stat_statements loaded here
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="incident-", dir=home)) / "data", bindir=bindir,
                            port=free_port(), settings=settings)
    server.start()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE DATABASE shop")
        from opsbook.config.file import from_dict  # noqa: PLC0415
        from opsbook.history import open_store  # noqa: PLC0415
        from opsbook.incident.watch import Watcher  # noqa: PLC0415

        folder = server.data_dir.parent
        config = from_dict({"targets": {"shop": {"dsn": server.conninfo(dbname="shop")}},
                            "history": {"url": f"sqlite:///{folder / 'history.sqlite'}"},
                            "reports": {"dir": str(folder / "reports")}})
        store = open_store(config)
        watcher = Watcher(config, ["shop"], store=store, every_s=1, echo=lambda line: None)
        start = time.time()
        watcher.tick("shop")
        incident = run_incident(server.conninfo(dbname="shop"), on_tick=lambda: watcher.tick("shop"))
        watcher.tick("shop")
        for s in watcher.sessions.values():
            s.close()
        store.close()
        log_marker(server.conninfo(dbname="shop"), MARKER)
        wait_logged(server.data_dir / "log", MARKER)
        log_dir = freeze_logs(server, folder / "recorded-logs")
        yield IncidentLog(server, "shop", incident, log_dir, LOG_SETTINGS["log_line_prefix"].strip("'"), config,
                          start, time.time())
    finally:
        server.stop()
