"""The readers of syslog, logplex, Cloud SQL, CloudNativePG and compressed logs on files an attacker wrote or
handed over: decompression bombs, syslog parts spliced or grown without end, a user's "#012" or cut query read as a
new line, JSON nested thousands deep, numbers int() refuses, and folders of many twins. Each reads in a child
process with a deadline (tests/test_logs_hostile.py), which also measures its peak memory."""
from __future__ import annotations

import bz2
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opsbook.logs import Problems, iter_events
from opsbook.logs.sources import LogFile, choose, series

CHILD = """
import json, sys
from opsbook.logs import Problems, iter_events
p = Problems()
try:
    ev = [{"severity": e.severity, "pid": e.pid, "message": e.message[:200]} for e in iter_events(sys.argv[1], problems=p)]
    out = {"events": ev, "problems": p.lines()}
except Exception as exc:
    out = {"error": f"{type(exc).__name__}: {exc}"}
# VmHWM: this program's own peak (ru_maxrss keeps the parent's size at the fork across exec: the pytest process of
# a whole suite is over 300 MB)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
out["rss_mb"] = int(hwm.split()[1]) // 1024
print(json.dumps(out))
"""
LINE = "Feb 15 10:00:01 db1 postgres[2345]: [{}] user=app,db=shop LOG:  statement: {}\n"


def read_in_child(path: Path, timeout: float = 60) -> dict:
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} took more than {timeout} s")
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert "error" not in out, out["error"]
    return out


def _bz2(path: Path, head: bytes, chunk: bytes, times: int) -> Path:
    c = bz2.BZ2Compressor(9)
    path.write_bytes(b"".join([c.compress(head), *(c.compress(chunk) for _ in range(times)), c.flush()]))
    return path


def test_bzip2_bomb_of_one_line_reads_in_bounded_memory(tmp_path):
    # 256 MiB of one line without a newline, from a file of a few hundred bytes: it was 1.5 GB of memory
    bomb = _bz2(tmp_path / "pg.log.bz2", LINE.format("1-1", "select 1").encode(), b"a" * (1 << 20), 256)
    assert bomb.stat().st_size < 1024
    out = read_in_child(bomb)
    assert len(out["events"]) == 1
    assert out["rss_mb"] < 200, out["rss_mb"]


def test_syslog_message_does_not_grow_without_end(tmp_path):
    # 100,000 parts of one message (90 MB): the join was quadratic (minutes) and unbounded
    part = b"Feb 15 10:00:01 db1 postgres[2345]: [2-2] " + b"x" * 900 + b"\n"
    log = _bz2(tmp_path / "pg.log.bz2", LINE.format("2-1", "select '").encode(), part, 100_000)
    t0 = time.monotonic()
    out = read_in_child(log)
    assert time.monotonic() - t0 < 30
    assert out["rss_mb"] < 300, out["rss_mb"]
    assert any("message over" in p for p in out["problems"])


@pytest.mark.parametrize("lines", [
    # the user's query says "#012" (rsyslog's newline) and then a severity
    [LINE.format("1-1", "select '#012FATAL:  the database system is shutting down'")],
    # a query cut at 900 bytes where the next part starts with a severity
    [LINE.format("1-1", "select '" + "x" * 800), "Feb 15 10:00:01 db1 postgres[2345]: [1-2] PANIC:  forged'\n"],
    # another session's line between the parts: the orphan part alone
    [LINE.format("1-1", "select '" + "x" * 800), LINE.format("1-1", "select 2").replace("2345", "999"),
     "Feb 15 10:00:01 db1 postgres[2345]: [1-2] x PANIC:  forged'\n"],
], ids=["hash012", "cut-part", "orphan-part"])
def test_users_text_in_syslog_makes_no_event(tmp_path, lines):
    log = tmp_path / "pg.log"
    log.write_text(LINE.format("0-1", "select 0") + "".join(lines))
    out = read_in_child(log)
    assert {e["severity"] for e in out["events"]} == {"LOG"}, out["events"]
    assert all(e["pid"] in (2345, 999) for e in out["events"])


def _cnpg(**record) -> str:
    return json.dumps({"level": "info", "ts": "2024-02-15T10:00:01Z", "logger": "postgres", "msg": "record",
                       "record": {"log_time": "2024-02-15 10:00:01.123 UTC", "error_severity": "LOG",
                                  "message": "m", **record}})


@pytest.mark.parametrize("second", [
    '{"record":' + "[" * 100_000 + "]" * 100_000 + "}",  # nesting: RecursionError out of json
    _cnpg(process_id="²"),  # isdigit() but not int()
    _cnpg(process_id="9" * 5000),  # past int()'s digit limit
    json.dumps({"insertId": "x", "logName": "l", "textPayload": [[[]]]}) + "[" * 100_000,
], ids=["nested", "superscript-pid", "huge-pid", "cloudsql-nested"])
def test_cloud_envelopes_of_hostile_json_are_problems(tmp_path, second):
    log = tmp_path / "cnpg.log"
    log.write_text(_cnpg(process_id="7") + "\n" + second + "\n")
    out = read_in_child(log)
    assert out["events"][0]["pid"] == 7


def test_first_line_nested_too_deep_is_not_a_log(tmp_path):
    log = tmp_path / "x.json"
    log.write_text('{"a":' + "[" * 100_000 + "]" * 100_000 + "}\n")
    good = tmp_path / "pg.log"
    good.write_text("2024-02-15 10:00:01.123 UTC [1] LOG:  x\n")
    out = read_in_child(tmp_path)
    assert len(out["events"]) == 1
    assert any("nested too deep" in p for p in out["problems"])


def test_folder_of_many_twins_and_overlaps_is_chosen_in_linear_time():
    n = 50_000  # each chosen in ~0.1 s; the twin search and the runs were quadratic (minutes)
    files = [LogFile(Path(f"/x/p{i}.log"), "stderr") for i in range(n)] + \
        [LogFile(Path(f"/x/p{i}.csv"), "csvlog") for i in range(n)]
    t0 = time.process_time()
    keep, left = choose(files)
    runs = series(keep)
    assert time.process_time() - t0 < 5
    assert len(keep) == n and len(left) == n and len(runs) == n


@pytest.mark.parametrize("name, text", [
    ("postgresql.json", '{"timestamp": "2026-12-01 10:00:00.000 UTC", "error_severity": "LOG", "message": "ok"}\n'
                        + "[" * 100_000 + "]" * 100_000 + "\n"),
    ("supabase.json", '{"result": ' + "[" * 100_000 + "]" * 100_000 + "}"),
])
def test_jsonlog_and_supabase_exports_nested_too_deep_are_problems(tmp_path, name, text):
    """jsonlog and the Supabase export's reader met JSON nested 100,000 deep with a RecursionError traceback."""
    path = tmp_path / name
    path.write_text(text)
    problems = Problems()
    fmt = "jsonlog" if name.startswith("postgresql") else "supabase-json"
    events = list(iter_events(path, fmt=fmt, problems=problems))
    assert problems and all(e.message == "ok" for e in events), problems.lines()
