"""The embedded server wrapper: idempotent, recovers from stale pid files and killed owners, root and non-root."""
from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from conftest import PG15_BIN, ROOT, free_port, unprivileged_home
from opsbook.database.embedded import SERVER_ACCOUNT, EmbeddedServer
from opsbook.core.errors import EmbeddedServerError


def _select_one(server: EmbeddedServer) -> int:
    with psycopg.connect(server.conninfo()) as c:
        return c.execute("SELECT 1").fetchone()[0]


@pytest.fixture
def server():
    # under the suite's home, not tmp_path: a concurrent pytest resets /tmp/pytest-of-root to 0700, which locks
    # the server account out of its data directory
    s = EmbeddedServer(Path(tempfile.mkdtemp(dir=os.environ["OPSBOOK_HOME"])) / "data", port=free_port(),
                       settings={"fsync": "off"})
    yield s
    s.stop()


def test_start_is_idempotent_and_preloads_pg_stat_statements(server):
    first = server.start()
    again = server.start()
    assert first["running"] and again["pid"] == first["pid"]
    with psycopg.connect(server.conninfo()) as c:
        assert c.execute("SHOW shared_preload_libraries").fetchone()[0] == "pg_stat_statements"
        assert c.execute("SHOW server_version_num").fetchone()[0].startswith("18")
    assert server.stop()["running"] is False
    assert server.stop()["running"] is False  # stopping a stopped server is fine


def test_runs_as_system_account_when_root(server):
    status = server.start()
    expected = SERVER_ACCOUNT if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert status["run_as"] == expected
    owner = pwd.getpwuid(Path(f"/proc/{status['pid']}").stat().st_uid).pw_name
    assert owner == expected


def test_stale_pid_file_after_crash_is_recovered(server):
    pid = server.start()["pid"]
    os.kill(pid, signal.SIGKILL)  # a crash: postmaster.pid stays behind
    for _ in range(50):
        if server.running_pid() is None:
            break
        time.sleep(0.1)
    assert (server.data_dir / "postmaster.pid").exists()
    assert server.status()["running"] is False
    # children of the killed postmaster may linger a moment; start must still succeed
    deadline = time.time() + 20
    while True:
        try:
            server.start()
            break
        except EmbeddedServerError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    assert _select_one(server) == 1


def test_server_outlives_a_killed_owner_process(server):
    """A Jupyter kernel that started the server and was killed leaves a server that status/stop still manage."""
    code = ("import sys; sys.path.insert(0, %r); from opsbook.database.embedded import EmbeddedServer; "
            "EmbeddedServer(%r, port=%d).start(); import time; print('up', flush=True); time.sleep(60)"
            % (str(ROOT / "lib"), str(server.data_dir), server.port))
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert owner.stdout.readline().strip() == "up"
    owner.kill()
    owner.wait()
    assert server.status()["running"] is True
    assert _select_one(server) == 1
    assert server.stop()["running"] is False


def test_port_taken_by_someone_else_picks_another(tmp_path):
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        s = EmbeddedServer(tmp_path / "data", port=taken, settings={"fsync": "off"})
        try:
            status = s.start()
            assert status["running"] and status["port"] != taken
            assert _select_one(s) == 1
        finally:
            s.stop()


def test_non_empty_foreign_directory_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedServerError, match="not empty"):
        EmbeddedServer(tmp_path / "data").init()


def test_bad_bindir_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddedServerError, match="no pg_ctl"):
        EmbeddedServer(tmp_path / "data", bindir=tmp_path)


def test_a_chosen_port_stays_and_a_taken_one_is_a_clear_error():
    """Once a server has a port, clients and opsbook.toml files point at it: it never silently moves; `opsbook db
    start` says so in one line."""
    import socket

    home = Path(tempfile.mkdtemp(dir=os.environ["OPSBOOK_HOME"]))
    server = EmbeddedServer(home / "embedded", port=free_port(), settings={"fsync": "off"})
    try:
        port = server.start()["port"]
        server.stop()
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", port))
            blocker.listen()
            with pytest.raises(EmbeddedServerError, match=f"port {port} .* is taken by another program"):
                server.start()
            assert server.configured_port() == port and not server.status()["running"]
            cli = subprocess.run([sys.executable, "-m", "opsbook.cli", "db", "start"], capture_output=True,
                                 text=True, env={**os.environ, "OPSBOOK_HOME": str(home)}, timeout=120, cwd=home)
        assert cli.returncode == 1 and f"port {port}" in cli.stderr and "taken" in cli.stderr, cli.stderr
        assert len(cli.stderr.strip().splitlines()) == 1 and "Traceback" not in cli.stderr
        assert server.start()["port"] == port  # free again: the same port
    finally:
        server.stop()


def test_second_major_version_from_another_bindir(tmp_path):
    if not (PG15_BIN / "pg_ctl").exists():
        pytest.skip("no PostgreSQL 15 binaries on this machine (optional)")
    s = EmbeddedServer(tmp_path / "data", bindir=PG15_BIN, port=free_port())
    try:
        assert s.start()["version"].startswith("15.")
        with psycopg.connect(s.conninfo()) as c:
            assert c.execute("SHOW server_version_num").fetchone()[0].startswith("15")
    finally:
        s.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite itself runs as a normal user here: covered by every test")
def test_works_as_a_normal_user(tmp_path):
    """As root in CI we also prove the unprivileged path: a plain account starts and stops its own server."""
    pw, home = unprivileged_home(tmp_path)
    user = pw.pw_name
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from opsbook.database.embedded import EmbeddedServer\nimport psycopg, os\n"
            "s = EmbeddedServer(%r, port=%d)\nst = s.start()\n"
            "print(st['run_as'], psycopg.connect(s.conninfo()).execute('select current_user').fetchone()[0])\n"
            "s.stop()\n" % (str(ROOT / "lib"), str(home / "data"), free_port()))
    out = subprocess.run([sys.executable, "-c", code], user=user, group=user, extra_groups=[], capture_output=True,
                         text=True, env={"PATH": os.environ["PATH"], "HOME": str(home)}, cwd=home, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [user, "postgres"]


def test_settings_persist_for_later_instances(server):
    server.configure(max_connections="33")
    server.start()
    again = EmbeddedServer(server.data_dir)  # what `opsbook db start` in another process sees
    again.restart()
    with psycopg.connect(again.conninfo()) as c:
        assert c.execute("SHOW max_connections").fetchone()[0] == "33"
        assert c.execute("SHOW shared_preload_libraries").fetchone()[0] == "pg_stat_statements"
    assert again.configured_port() == server.port
