"""The log reader on a real incident logged by a real server in csvlog, jsonlog and stderr at once, checked
against what was done and against pgbadger's own counts of the same files."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from opsbook.logs import Problems, count_kinds, iter_events, show_prefix


def kinds(path, **kw):
    problems = Problems()
    events = list(iter_events(path, problems=problems, **kw))
    assert not problems, problems.lines()
    return events, count_kinds(events)


def test_three_formats_agree_with_each_other_and_with_what_was_done(incident_log):
    inc = incident_log.incident
    csv_events, csv_kinds = kinds(incident_log.file("csv"))
    _, json_kinds = kinds(incident_log.file("json"))
    _, stderr_kinds = kinds(incident_log.file("log"), prefix=incident_log.prefix)
    assert csv_kinds == json_kinds == stderr_kinds
    assert csv_kinds["statement_timeout"] == inc.timeouts > 0
    assert csv_kinds["deadlock"] == inc.deadlocks == 1
    assert csv_kinds["too_many_connections"] == inc.refused > 0
    assert csv_kinds["temp_file"] >= inc.temp_sorts
    assert csv_kinds["lock_wait"] >= inc.timeouts  # each cancelled statement first waited past deadlock_timeout
    assert csv_kinds["checkpoint"] >= 1
    root_waits = [e for e in csv_events if e.kind == "lock_wait" and inc.holder_pid in e.blocking_pids]
    assert root_waits and all(e.relation == "pm_branches" for e in root_waits)
    (dl,) = [e for e in csv_events if e.kind == "deadlock"]
    assert len(dl.statements) == 2 and all("pm_branches" in s for s in dl.statements)


def test_three_formats_agree_on_postgresql_15(incident_log_15):
    inc = incident_log_15.incident
    _, csv_kinds = kinds(incident_log_15.file("csv"))
    _, json_kinds = kinds(incident_log_15.file("json"))
    _, stderr_kinds = kinds(incident_log_15.file("log"), prefix=incident_log_15.prefix)
    assert csv_kinds == json_kinds == stderr_kinds
    assert (csv_kinds["statement_timeout"], csv_kinds["deadlock"], csv_kinds["too_many_connections"]) == \
        (inc.timeouts, 1, inc.refused)
    from opsbook.history import open_store
    from opsbook.incident.watch import read_samples

    store = open_store(incident_log_15.config)  # the sampler ran through it on 15 too
    rows = read_samples(store.engine, "shop", 0, incident_log_15.end + 1)
    store.close()
    assert len(rows) >= 4 and {r["status"] for r in rows} == {"ok"}
    assert any(r["detail"]["roots"] and r["detail"]["roots"][0]["pid"] == inc.holder_pid for r in rows)


def test_prefix_read_from_the_server(incident_log):
    import psycopg

    with psycopg.connect(incident_log.conninfo) as conn:
        assert show_prefix(conn) == incident_log.prefix


def pgbadger_counts(path, *args) -> dict:
    out = path.parent / f"pgbadger-{path.suffix[1:]}.json"
    # its own pid folder: pgbadger refuses to start while another instance's pid file is in /tmp
    subprocess.run(["pgbadger", "-q", "--pid-dir", str(path.parent), *args, "-x", "json", "-o", str(out),
                    str(path)], check=True, timeout=60)
    d = json.loads(out.read_text())
    errors = d["error_info"].get("postgres", {})

    def errs(text):
        return sum(v.get("count", len(v["error"])) for k, v in errors.items() if text in k)

    return {"temp_file": d["tempfile_info"]["postgres"]["count"],
            "statement_timeout": errs("canceling statement due to statement timeout"),
            "deadlock": errs("deadlock detected"), "too_many_connections": errs("too many clients"),
            "lock_wait": errs("still waiting for"), "lock_acquired": sum(
                v["count"] for v in d["lock_info"].get("postgres", {}).values()),
            "connection": d["connection_info"]["postgres"]["count"],
            "disconnection": d["session_info"]["postgres"]["count"]}


@pytest.mark.skipif(shutil.which("pgbadger") is None, reason="pgbadger not installed (apt-get install pgbadger)")
@pytest.mark.parametrize("ext", ["csv", "log"])
def test_counts_match_pgbadger(incident_log, tmp_path, ext):
    src = incident_log.file(ext)
    path = tmp_path / src.name
    shutil.copy(src, path)  # pgbadger writes beside its input; the log folder belongs to the server's account
    args = ["-f", "csv"] if ext == "csv" else ["-f", "stderr", "-p", incident_log.prefix]
    expected = pgbadger_counts(path, *args)
    _, ours = kinds(path, prefix=incident_log.prefix if ext == "log" else None)
    assert {k: ours.get(k, 0) for k in expected} == expected
    assert all(expected[k] > 0 for k in ("temp_file", "statement_timeout", "deadlock", "too_many_connections",
                                         "lock_wait", "connection"))
