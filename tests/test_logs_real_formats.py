"""Log formats written by the real programs on this machine, read by opsbook and by pgbadger, event counts per
severity (and kind) equal, every difference named: PgBouncer's own log (Debian's pgbouncer in front of a test
server, with logins, a wrong password, a database that does not exist, a server database that does not exist, a
server that is not listening, a pool full until query_wait_timeout and a server connection terminated under its
client), and PostgreSQL's syslog (a real server with log_destination = 'syslog').

syslog(3) writes only to /dev/log, which the tests must not create or take over (this machine has none, and no
syslog daemon installed). The server therefore runs in a mount namespace of its own (unshare, as root) whose /dev
is a private copy holding the test's own syslog socket; the machine's /dev is never touched, and the namespace goes
with the server. The socket's reader writes what it receives as rsyslog's traditional file format does."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from conftest import _server, free_port
from opsbook.database.embedded import become_account, chown_to_account
from opsbook.logs import Problems, iter_events, plan
from pooler import PGBOUNCER
from test_logs_formats import needs_pgbadger, pgbadger

needs_pgbouncer = pytest.mark.skipif(not os.path.exists(PGBOUNCER),
                                     reason="pgbouncer is not installed (.ci/run adds it)")
ERRORS = ("WARNING", "ERROR", "FATAL")


def attempt(conninfo: str, query: str = "SELECT 1") -> str:
    """'ok', or the error the client was given (one line)."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute(query).fetchall()
        return "ok"
    except psycopg.Error as e:
        return " ".join(str(e).split())


@pytest.fixture(scope="module")
def bouncer_log(tmp_path_factory):
    """PgBouncer's log of one session of real traffic, after PgBouncer stopped (SIGINT: its safe shutdown), and
    what each client was told."""
    server = _server(tmp_path_factory, "bouncer-log")
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE ROLE app LOGIN PASSWORD 'secret'")
            c.execute("CREATE DATABASE shop OWNER app")
        folder = Path(tempfile.mkdtemp(prefix="pgbouncer-log-", dir=os.environ["OPSBOOK_HOME"]))
        sock, port, closed = server.data_dir, server.configured_port() or server.port, free_port()
        listen = free_port()
        (folder / "users.txt").write_text('"app" "secret"\n')
        (folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"shop = host={sock} port={port}\n"
            f"small = host={sock} port={port} dbname=shop pool_size=1\n"
            f"ghost = host={sock} port={port} dbname=ghost\n"
            f"gone = host=127.0.0.1 port={closed} dbname=shop\n"  # nothing listens there
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n"
            f"auth_type = md5\nauth_file = {folder / 'users.txt'}\npool_mode = session\n"
            "default_pool_size = 5\nquery_wait_timeout = 1\n"
            f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n")
        for p in (folder, *folder.iterdir()):
            chown_to_account(p)
        with open(folder / "stderr", "wb") as err:  # PgBouncer writes its log there too: not into a pipe
            proc = subprocess.Popen([PGBOUNCER, str(folder / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                                    stderr=err, preexec_fn=become_account(death_signal=15))
        try:
            def conninfo(db: str, password: str = "secret") -> str:
                return f"host=127.0.0.1 port={listen} user=app password={password} dbname={db} connect_timeout=10"

            deadline = time.monotonic() + 30
            while attempt(conninfo("shop")) != "ok":
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {(folder / 'stderr').read_text()[-800:]}")
                time.sleep(0.1)
            told = {"logins": [attempt(conninfo("shop")) for _ in range(3)],
                    "wrong password": attempt(conninfo("shop", "wrong")),
                    "no such database": attempt(conninfo("nosuch")),
                    "server database missing": attempt(conninfo("ghost")),
                    "server not listening": attempt(conninfo("gone"))}
            with psycopg.connect(conninfo("small"), autocommit=True) as holder:  # the pool's one server connection
                holder.execute("SELECT 1")
                told["pool full"] = attempt(conninfo("small"))
            with psycopg.connect(conninfo("shop"), autocommit=True) as victim:
                pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]  # session mode: the server's
                with psycopg.connect(server.conninfo(), autocommit=True) as c:  # waits until it has exited
                    assert c.execute("SELECT pg_terminate_backend(%s, 30000)", (pid,)).fetchone()[0]
                try:
                    victim.execute("SELECT 1")
                    told["server gone"] = "ok"
                except psycopg.Error as e:
                    told["server gone"] = " ".join(str(e).split())
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out = tmp_path_factory.mktemp("bouncer-log") / "pgbouncer.log"
        shutil.copy(folder / "pgbouncer.log", out)
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        server.stop()
    return out, told


@needs_pgbouncer
def test_the_traffic_happened(bouncer_log):
    """What each client was told: the log below is of these events, not of a quiet pooler."""
    _, told = bouncer_log
    assert told["logins"] == ["ok"] * 3
    assert told["wrong password"].endswith("password authentication failed")
    assert told["no such database"].endswith("no such database: nosuch")
    assert told["server database missing"].endswith('database "ghost" does not exist')
    assert told["server not listening"].endswith("query_wait_timeout")
    assert told["pool full"].endswith("query_wait_timeout")
    assert told["server gone"] != "ok"


def pgb_normalize(text: str) -> str:
    """pgbadger's pgb_normalize_error (12.0), to name an error's kind as it does."""
    text = re.sub(r'"[^"]*"', '"..."', text)
    text = re.sub(r"'[^']*'", "'...'", text)
    text = re.sub(r"\([^)]+\)", "(...)", text)
    text = re.sub(r"[\d.]+:\d+", "...", text)
    text = re.sub(r"(no such database: ) .*", r"\1 ...", text)
    text = re.sub(r"db=\S+ user=\S+", "db=... user=...", text)
    return re.sub(r"(no more connections allowed) .*", r"\1", text)


# pgbadger raises PgBouncer's LOG lines about a failed login or connect to FATAL (its is_pgbouncer_error): for it
# "S-...: gone/app@127.0.0.1:5432 closing because: connect failed (age=0s)" is an error; the log says LOG
PGBADGER_FATAL = re.compile(r"(login|connect) failed ")


@needs_pgbouncer
@needs_pgbadger
def test_counts_per_severity_and_kind_equal_pgbadgers(bouncer_log):
    """Each WARNING/ERROR/FATAL line of the real log is one event of that severity in opsbook; pgbadger counts the
    same, per kind, with two differences named: the LOG lines it raises to FATAL (above), and its peer pattern,
    which has no parentheses, so a client without a database ("(nodb)/app@127.0.0.1:52800") keeps its peer in
    pgbadger's kind."""
    path, _ = bouncer_log
    (lf,) = plan(path)
    assert lf.fmt == "pgbouncer"
    problems = Problems()
    events = list(iter_events(path, problems=problems))
    assert not problems, problems.lines()
    assert len(events) == sum(1 for line in path.read_text().splitlines() if line.strip())
    written = Counter(line.split(" ", 5)[4] for line in path.read_text().splitlines())
    assert Counter(e.severity for e in events) == written  # the severity as PgBouncer wrote it

    raised = [e for e in events if e.severity == "LOG" and PGBADGER_FATAL.search(e.message)]
    assert [e.message for e in raised] == ["closing because: login failed (age=0s)",
                                           "closing because: connect failed (age=0s)"]
    ours = Counter(f"{e.severity}:  {pgb_normalize(e.message)}" for e in events if e.severity in ERRORS)
    ours.update(f"FATAL:  {pgb_normalize(e.message)}" for e in raised)
    d = pgbadger(path)
    theirs = Counter({re.sub(r"^(\w+:  )\(\.\.\.\)/\S*@\.\.\. ", r"\1", kind): v["count"]
                      for kind, v in d["pgb_error_info"].items()})
    assert ours == theirs
    assert sum(ours.values()) == d["pgb_overall_stat"]["errors_number"] == 9
    assert Counter(k.split(":")[0] for k in ours.elements()) == {"WARNING": 7, "FATAL": 2}
    assert ours["WARNING:  pooler error: query_wait_timeout"] == 2  # the pool full, the server not listening


@needs_pgbouncer
@needs_pgbadger
def test_logins_per_database_equal_pgbadgers(bouncer_log):
    """A client asking for a database PgBouncer does not know is logged "(nodb)/app@..."; the database it asked
    for is the login's db=, which is what pgbadger counts (and what an on-call engineer looks for)."""
    path, _ = bouncer_log
    events = list(iter_events(path))
    logins = [e for e in events if "login attempt" in e.message]
    d = pgbadger(path)["pgb_connection_info"]
    assert len(logins) == d["count"] == 11
    assert Counter(e.database for e in logins) == d["database"] == {"shop": 6, "small": 2, "ghost": 1, "gone": 1,
                                                                    "nosuch": 1}
    assert Counter(e.user for e in logins) == d["user"] == {"app": 11}
    # pgbadger's peer pattern fails on "(nodb)/...": it loses that login's address; opsbook keeps it
    assert d["host"] == {"127.0.0.1": 10, "": 1}
    assert Counter(e.client for e in logins) == {"127.0.0.1": 11}
    assert {e.database for e in events} <= {None, "shop", "small", "ghost", "gone", "nosuch"}
    nosuch = [e for e in events if e.database == "nosuch"]  # every line of that client, not only its login
    assert [e.severity for e in nosuch] == ["LOG", "LOG", "LOG", "WARNING"] and {e.user for e in nosuch} == {"app"}
    # a server connection's line ("S-0x...: shop/app@unix:5432 new connection to server") names no client
    server_side = [e for e in events if "new connection to server" in e.message]
    assert len(server_side) == 3 and {e.client for e in server_side} == {None}


# run by `unshare -m` as root: the server's own /dev (a tmpfs with the devices it needs, and the test's socket as
# /dev/log), private to the namespace, then the server as its account; $1 the folder, $2 the account, then the command
PRIVATE_DEV = r"""set -e
mkdir "$1/dev.host"
mount --bind /dev "$1/dev.host"
mount -t tmpfs -o mode=755,size=1m opsbook-test-dev /dev
for n in null zero full random urandom; do touch "/dev/$n"; mount --bind "$1/dev.host/$n" "/dev/$n"; done
mkdir /dev/shm && mount -t tmpfs -o mode=1777,size=256m opsbook-test-shm /dev/shm
ln -s /proc/self/fd /dev/fd && ln -s /proc/self/fd/0 /dev/stdin && ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
touch /dev/log && mount --bind "$1/log" /dev/log
umount -l "$1/dev.host"
account=$2; shift 2
exec setpriv --reuid="$account" --regid="$account" --clear-groups --pdeathsig TERM env TZ=UTC "$@"
"""
SYSLOG_SETTINGS = {"log_destination": "syslog", "syslog_ident": "postgres", "syslog_facility": "local0",
                   "log_line_prefix": "user=%u,db=%d,app=%a,client=%h ", "log_min_duration_statement": "0",
                   "log_connections": "on", "log_disconnections": "on", "logging_collector": "off",
                   "log_min_messages": "warning"}


def children(pid: int) -> list[bytes]:
    """The command lines (process titles) of a process's children."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            out.append(Path(f"/proc/{child}/cmdline").read_bytes())
        except OSError:  # gone meanwhile
            pass
    return out


class SyslogSocket:
    """The test's syslog daemon: a unix datagram socket whose messages ("<pri>Mmm dd hh:mm:ss ident[pid]: text",
    as syslog(3) sends them) become lines of a file with the host's name after the time, control characters
    written #ooo, as rsyslog's traditional file format has them."""

    def __init__(self, path: Path):
        import socket
        import threading

        self.path, self.lines = path, []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        path.chmod(0o666)  # the server's account sends to it
        self.sock.settimeout(0.2)
        self.host = socket.gethostname().split(".")[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                if self._stop.is_set():  # the sender is gone and nothing is left to read
                    return
                continue
            m = re.match(rb"<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)", data, re.S)
            if m is None:  # not syslog(3)'s: kept as it came, for the reader to report
                self.lines.append(data.decode(errors="replace") + "\n")
                continue
            text = re.sub(r"[\x00-\x1f]", lambda c: f"#{ord(c.group()):03o}", m.group(2).decode())
            self.lines.append(f"{m.group(1).decode()} {self.host} {text}\n")

    def close(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sock.close()
        return self.lines


@pytest.fixture(scope="module")
def syslog_log(tmp_path_factory):
    """A real PostgreSQL's syslog over a session of logins, a wrong password, a missing database, statements
    (one over two lines, one with a tab), errors and a warning; written to a file after the server stopped."""
    from opsbook.database.embedded import server_account

    account = server_account()
    if account is None or shutil.which("unshare") is None or shutil.which("setpriv") is None:
        pytest.skip("a private /dev for the server's syslog needs root, unshare and setpriv (util-linux)")
    server = _server(tmp_path_factory, "syslog")
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE ROLE app LOGIN PASSWORD 'secret'")
            c.execute("CREATE DATABASE shop OWNER app")
    finally:
        server.stop()  # started again below, in its namespace
    port = server.configured_port() or server.port
    folder = Path(tempfile.mkdtemp(prefix="syslog-", dir=os.environ["OPSBOOK_HOME"]))
    daemon = SyslogSocket(folder / "log")
    settings = [a for k, v in SYSLOG_SETTINGS.items() for a in ("-c", f"{k}={v}")]
    with open(folder / "stderr", "wb") as err:
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", PRIVATE_DEV, "sh",
                                 str(folder), account, str(server.bindir / "postgres"), "-D", str(server.data_dir),
                                 *settings], stdout=subprocess.DEVNULL, stderr=err)
    try:
        app = f"host=127.0.0.1 port={port} user=app dbname=shop application_name=shopapp connect_timeout=10"
        deadline = time.monotonic() + 60
        # no login before the server says it is ready: one during its start logs a FATAL ("the database system is
        # starting up") that the counts below would include (seen under load)
        while not any("ready to accept connections" in line for line in list(daemon.lines)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server in its namespace did not start: {(folder / 'stderr').read_text()[-800:]}")
            time.sleep(0.1)
        assert attempt(app + " password=secret") == "ok"
        told = {"wrong password": attempt(app + " password=wrong"),
                "no such database": attempt(f"host={server.data_dir} port={port} user=app dbname=nosuch")}
        with psycopg.connect(app + " password=secret", autocommit=True) as c:
            for q in ("SELECT 1", "SELECT a,\n\tb FROM (VALUES (1, 2)) v(a, b)", "SELEC 1", "SELECT 1/0",
                      "ROLLBACK"):
                try:
                    c.execute(q)
                except psycopg.Error as e:
                    told[q] = type(e).__name__
        # every session of app has ended before the shutdown: one still exiting would log a FATAL of its own
        while any(b"postgres: app " in cmdline for cmdline in children(proc.pid)):
            if time.monotonic() > deadline:
                raise RuntimeError("app's sessions did not end")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        lines = daemon.close()
    path = tmp_path_factory.mktemp("syslog-log") / "postgresql.syslog"
    path.write_text("".join(lines))
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(server.data_dir.parent, ignore_errors=True)
    return path, told


@needs_pgbadger
def test_real_syslog_counts_equal_pgbadgers(syslog_log):
    """A real server's syslog (split messages, #011 continuations, a password refused with its DETAIL, the startup
    HINT): counts per severity and statements equal pgbadger's."""
    from test_logs_formats import our_counts, pgbadger_counts

    path, told = syslog_log
    assert told == {"wrong password": told["wrong password"], "no such database": told["no such database"],
                    "SELEC 1": "SyntaxError", "SELECT 1/0": "DivisionByZero"}
    assert "password authentication failed" in told["wrong password"]
    (lf,) = plan(path)
    assert lf.fmt == "syslog"
    problems = Problems()
    events = list(iter_events(path, problems=problems, log_timezone="UTC"))  # the server ran with TZ=UTC
    assert not problems, problems.lines()
    ours, theirs = our_counts(events), pgbadger_counts(pgbadger(path))
    assert ours == theirs
    assert {k: v for k, v in ours.items() if k != "LOG"} == {"FATAL": 2, "ERROR": 2, "WARNING": 1, "DETAIL": 1,
                                                             "HINT": 1, "STATEMENT": 2, "queries": 4}
    (refused,) = [e for e in events if e.message.startswith("password authentication failed")]
    assert (refused.user, refused.database, refused.client) == ("app", "shop", "127.0.0.1")
    (two_lines,) = [e for e in events if e.kind == "slow_statement" and e.statement.startswith("SELECT a,")]
    # as the client sent it: the log has "#011#011b", the tab PostgreSQL adds after a newline and the query's own
    assert two_lines.statement == "SELECT a,\n\tb FROM (VALUES (1, 2)) v(a, b)"
    assert "#011#011b FROM" in path.read_text()
