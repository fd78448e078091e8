"""PgBouncer (Debian's package) started by the tests on 127.0.0.1 in front of a test server, and an application that
writes through it: what a hosted database's pooler does to opsbook, and what opsbook must not do to the app."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from conftest import free_port
from opsbook.database.embedded import become_account, chown_to_account

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class Bouncer:
    """One pgbouncer process in `mode` (transaction or session) with a small pool, so that opsbook's statements and
    the application's share server connections; it runs as the server account when the tests are root."""

    def __init__(self, server, mode: str, home: Path, pool_size: int = 2):
        self.server, self.mode = server, mode
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"pgbouncer-{mode}-", dir=home))
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={server.data_dir} port={server.configured_port() or server.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\n"
            f"pool_mode = {mode}\ndefault_pool_size = {pool_size}\nmin_pool_size = 0\nmax_client_conn = 200\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\npidfile = {self.dir / 'pgbouncer.pid'}\n"
            "server_reset_query = DISCARD ALL\n")
        for p in (self.dir, *self.dir.iterdir()):
            chown_to_account(p)
        self.proc = subprocess.Popen([PGBOUNCER, str(self.dir / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=become_account(death_signal=15))
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {self.proc.stderr.read().decode()[-800:]}")
                time.sleep(0.1)

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Application:
    """`clients` connections writing through the pooler as the same user into the same database, each INSERT in
    its own transaction, reading the settings it runs under as it goes; every failure and every foreign setting is
    kept."""

    EXPECTED = {"transaction_read_only": "off", "statement_timeout": "0", "lock_timeout": "0"}

    def __init__(self, conninfo: str, clients: int = 3):
        self.conninfo = conninfo
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as c:
            c.execute("CREATE TABLE IF NOT EXISTS public.app_writes (id bigserial PRIMARY KEY, v int)")
            self.search_path = c.execute("SHOW search_path").fetchone()[0]
        self.writes = 0
        self.failures: list[str] = []
        self.foreign: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(clients)]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, prepare_threshold=None) as c:
            while not self._stop.is_set():
                try:
                    with c.transaction():
                        c.execute("INSERT INTO app_writes (v) VALUES (1)")
                        got = c.execute("SELECT current_setting('transaction_read_only'), "
                                        "current_setting('statement_timeout'), current_setting('lock_timeout'), "
                                        "current_setting('search_path')").fetchone()
                    self.writes += 1
                    seen = dict(zip([*self.EXPECTED, "search_path"], got))
                    wrong = {k: v for k, v in seen.items()
                             if v != (self.EXPECTED[k] if k in self.EXPECTED else self.search_path)}
                    if wrong:
                        self.foreign.append(repr(wrong))
                except psycopg.Error as e:
                    self.failures.append(" ".join(str(e).split())[:200])
                self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
