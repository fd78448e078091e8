"""The log reader on logs an attacker wrote into: carriage returns in queries, bind parameters and role names on a
real server, lines built to make a backtracking pattern run for hours, csv fields past the csv module's limit, and
paths that are not regular files. Each runs in a child process with a deadline, so a hang fails instead of
blocking the suite."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from opsbook.database.demo.incident import LOG_SETTINGS
from opsbook.database.embedded import EmbeddedServer

FAKE_PID = 4242
FAKE_DAY = "2001-02-03"
# what a client plants after a carriage return: a whole stderr line, a csvlog row and a jsonlog object, each with
# the fake pid, day and a severity the reader would count
FAKE_STDERR = (f"{FAKE_DAY} 04:05:06.000 UTC [{FAKE_PID}] postgres@postgres app=x FATAL:  sorry, too many clients "
               "already")
FAKE_CSV = (f'{FAKE_DAY} 04:05:06.000 UTC,"postgres","postgres",{FAKE_PID},"[local]",6b0.1,1,"",{FAKE_DAY} '
            f'04:05:06 UTC,3/7,0,PANIC,XX000,"fake panic",,,,,,,,,"x","client backend",,0')
FAKE_JSON = json.dumps({"timestamp": f"{FAKE_DAY} 04:05:06.000 UTC", "pid": FAKE_PID, "error_severity": "FATAL",
                        "state_code": "28P01", "message": 'password authentication failed for user "admin"'})
FAKE_ROLE = f"x\r{FAKE_DAY} 04:05:06.000 UTC [{FAKE_PID}] PANIC:  boom"  # at most 63 bytes: a role name
BIG_STATEMENT_CHARS = 250_000
MARKER = "opsbook-test-hostile-over"

CHILD = """
import json, sys, time
from opsbook.logs import Problems, iter_events
p = Problems()
t0 = time.process_time()  # this process's CPU time: the machine may be busy with other work
try:
    ev = [{"kind": e.kind, "severity": e.severity, "pid": e.pid, "ts": e.ts.isoformat(), "message": e.message,
           "user": e.user, "detail": e.detail, "statement": e.statement}
          for e in iter_events(sys.argv[1], prefix=sys.argv[2] or None, problems=p)]
    out = {"events": ev, "problems": p.lines(), "cpu_s": time.process_time() - t0}
except Exception as exc:
    out = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(out))
"""


def read_in_child(path, prefix: str | None = None, timeout: float = 60) -> dict:
    """iter_events in a child process, killed at the deadline (a pattern that backtracks, or a FIFO opened for
    reading, would otherwise hang the suite)."""
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(path), prefix or ""], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} took more than {timeout} s")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


# ---------------------------------------------------------------- a real server, written to by an attacker
@pytest.fixture(scope="module")
def hostile_log():
    """A server logging stderr, csvlog and jsonlog at once with log_statement = all, fed a query, a bind
    parameter and a role name that carry carriage returns followed by whole fake log records, and a statement
    larger than the csv module's default field limit. Yields the folder of the three files, frozen."""
    from conftest import TEST_SETTINGS, free_port  # noqa: PLC0415
    from incident import freeze_logs, log_marker, wait_logged  # noqa: PLC0415

    home = Path(os.environ["OPSBOOK_HOME"])
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="hostile-", dir=home)) / "data", port=free_port(),
                            settings={**TEST_SETTINGS, **LOG_SETTINGS, "log_statement": "'all'"})
    server.start()
    try:
        conninfo = server.conninfo()
        with psycopg.connect(conninfo, autocommit=True) as c:
            for fake in (FAKE_STDERR, FAKE_CSV, FAKE_JSON):
                c.execute(f"SELECT 1 /*\r{fake}\r\n{fake}\n*/")  # a statement, logged as written
                c.execute("SELECT %s::text", [f"p\r{fake}\r"], prepare=False)  # a bind parameter, in DETAIL
            c.execute(f"SELECT length('{'x' * BIG_STATEMENT_CHARS}')")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host=str(server.data_dir), port=server.port, dbname="postgres", user=FAKE_ROLE,
                            connect_timeout=10)
        log_marker(conninfo, MARKER)
        wait_logged(server.data_dir / "log", MARKER)
        yield freeze_logs(server, server.data_dir.parent / "recorded-logs")
    finally:
        server.stop()


@pytest.mark.parametrize("ext", ["log", "csv", "json"])
def test_carriage_returns_plant_no_event(hostile_log, ext):
    prefix = LOG_SETTINGS["log_line_prefix"].strip("'") if ext == "log" else None
    out = read_in_child(hostile_log / f"postgresql.{ext}", prefix)
    assert "error" not in out, out.get("error")
    events = out["events"]
    assert not [e for e in events if e["pid"] == FAKE_PID or e["ts"].startswith(FAKE_DAY)]
    assert not [e for e in events if e["kind"] in ("panic", "too_many_connections") or e["severity"] == "PANIC"]
    assert not out["problems"], out["problems"]
    # the failed login is there, with the role name PostgreSQL logged read whole (carriage return included), once
    # per backend that logged it (a connection retry, or another client reaching this server, is its own backend)
    refused = [e for e in events if e["severity"] == "FATAL" and FAKE_ROLE in (e["message"] or "")]
    assert refused and len({e["pid"] for e in refused}) == len(refused), refused
    assert all(e["kind"] in ("fatal", "authentication_failed") for e in refused)
    # the query and the bind parameter are read whole, as written
    texts = [(e["message"] or "") + (e["detail"] or "") for e in events]
    assert sum(f"\r{FAKE_STDERR}\r\n" in t for t in texts) == 1
    assert sum(f"p\r{FAKE_CSV}\r" in t for t in texts) == 1
    assert any(MARKER in t for t in texts)


def test_csvlog_field_larger_than_the_csv_default(hostile_log):
    # 128 KiB is the csv module's default field limit; PostgreSQL logs a statement of any size whole
    out = read_in_child(hostile_log / "postgresql.csv")
    assert "error" not in out, out.get("error")
    assert not out["problems"], out["problems"]
    big = [e for e in out["events"] if "x" * BIG_STATEMENT_CHARS in (e["message"] or "") + (e["statement"] or "")]
    assert len(big) == 1


# ---------------------------------------------------------------- patterns that run in linear time
TS = "2026-12-01 09:44:33.262 UTC"
GOOD = f"{TS} [42] bob@shop app=psql LOG:  checkpoint starting: time\n"
ONE_MB = 1_000_000


@pytest.mark.parametrize("prefix,good,head,unit", [
    (None, f"{TS} [42] db=shop,user=bob LOG:  checkpoint starting: time\n", f"{TS} [43] ", "[1]"),
    (None, f"{TS} [42] db=shop,user=bob LOG:  checkpoint starting: time\n", f"{TS} ", "ERROR: [9]"),
    ("%m [%p] %q%u@%d app=%a ", GOOD, f"{TS} [43] ", "@ app="),
    ("", "2026-12-01 09:44:33 UTC [42]: user=bob,db=shop,app=psql,client=10.0.0.5 LOG:  checkpoint starting\n",
     "2026-12-01 09:44:34 UTC [43]: user=", ",db=,app=,client= "),  # detected, as pgbadger recommends it
    ("%t:%r:%u@%d:[%p]:", "2026-12-01 09:44:33 UTC:10.0.0.5(5432):bob@shop:[42]:LOG:  checkpoint starting\n",
     "2026-12-01 09:44:34 UTC:", "x:@:[1]:"),
], ids=["generic-pid", "generic-space", "incident-prefix", "pgbadger-prefix-detected", "colon-prefix"])
def test_megabyte_line_without_severity_parses_in_linear_time(tmp_path, prefix, good, head, unit):
    hostile = head + unit * ((ONE_MB - len(head)) // len(unit)) + "\n"
    path = tmp_path / "postgresql.log"
    path.write_text(good + hostile + good)
    out = read_in_child(path, prefix or None, timeout=60)
    assert "error" not in out, out.get("error")
    assert out["cpu_s"] < 2, out["cpu_s"]  # hours before (backtracking)
    assert [e["message"] for e in out["events"]] == [good.split("LOG:  ")[1].rstrip("\n")] * 2
    assert any("line not in" in p or "line without" in p for p in out["problems"]), out["problems"]


def test_classifying_hostile_messages_is_linear(tmp_path):
    # any user can RAISE a "deadlock detected" with a DETAIL of their own; the deadlock parser reads that DETAIL
    detail = "\n" * 100_000 + "Process"
    row = {"timestamp": f"{TS}", "pid": 42, "error_severity": "ERROR", "message": "deadlock detected",
           "detail": detail}
    path = tmp_path / "postgresql.json"
    path.write_text(json.dumps(row) + "\n")
    out = read_in_child(path, timeout=60)
    assert "error" not in out, out.get("error")
    assert out["cpu_s"] < 2, out["cpu_s"]
    assert [e["kind"] for e in out["events"]] == ["deadlock"]


# ---------------------------------------------------------------- paths that are not regular files
def test_fifo_and_device_are_not_regular_files_and_never_opened(tmp_path):
    fifo = tmp_path / "postgresql.log"
    os.mkfifo(fifo)
    started = time.monotonic()
    for path in (fifo, Path("/dev/zero")):
        out = read_in_child(path, timeout=30)  # opening the FIFO for reading would block until a writer comes
        assert out.get("error") == f"LogSourceError: log path {path} is not a regular file", out
    good = tmp_path / "logs"
    good.mkdir()
    (good / "postgresql.log").write_text(GOOD)
    os.mkfifo(good / "postgresql.1.log")  # a folder holding a FIFO: the FIFO is left out, not opened
    out = read_in_child(good, "%m [%p] %q%u@%d app=%a ", timeout=30)
    assert [e["pid"] for e in out["events"]] == [42], out
    assert time.monotonic() - started < 60
