"""The post-mortem's window and log prefix: the demo's recorded incident read alone (not the demo's build around
it), and a log written with another log_line_prefix than the target's current one still read (issue 21, 7 and 8)."""
from __future__ import annotations

import math
import os
import re
import tempfile
import time
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import psycopg
import pytest

from opsbook.config.file import DEMO_DATABASE, from_dict
from opsbook.database.demo import RECORDED_PROBLEMS
from opsbook.database.embedded import EmbeddedServer
from opsbook.run.runner import run_runbook, runbook_meta

pytestmark = pytest.mark.slow

NOISE = "opsbook-test-build-noise"  # what the demo's build leaves in the log just before the incident
PREFIX_A = "%t [%p]: user=%u,db=%d,app=%a,client=%h "  # the log is written with this one...
PREFIX_B = "%m [%p] %q%u@%d app=%a "  # ...and the target says this one when the post-mortem runs


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def wait_in_file(path: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} never reached {path}"
        time.sleep(0.05)


def test_demo_post_mortem_reads_its_recorded_incident_not_the_build(demo_database, demo_server, tmp_path):
    """`opsbook demo` runs the post-mortem with `now-10m` and 5 minutes of padding right after building: the
    build's temp files and errors must not be the incident's, nor its 10 minutes the incident's duration."""
    with psycopg.connect(demo_server.conninfo(dbname=DEMO_DATABASE), autocommit=True) as c:
        c.execute("SET work_mem = '64kB'")
        c.execute(f"SELECT g FROM generate_series(1, 60000) g ORDER BY md5(g::text) /* {NOISE} */").fetchall()
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute(f"SELECT 1/0 AS \"{NOISE}\"")
    wait_in_file(demo_server.log_file, f'SELECT 1/0 AS "{NOISE}"')
    noise_done = time.time()
    time.sleep(max(0.0, noise_done + 2 - time.time()))  # the demo pads by seconds (2): the noise is out of reach
    # a history store of its own: the demo plays a new incident for this run (not one an earlier test recorded)
    config = from_dict({"history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"}})
    params = dict(runbook_meta("post-mortem")["demo_parameters"])
    result = run_runbook("post-mortem", "demo", params, config=config, output_dir=tmp_path / "reports")
    assert result.exit_code == 0 and result.sidecar["status"] == "ok", result.sidecar["error"]

    m = result.sidecar["metrics"]
    assert m["incident_duration_s"] < 60, m  # the incident lasts seconds; `now-10m` to now is 600 s
    html, doc = result.html_path.read_text(), result.html_path.with_suffix(".md").read_text()
    assert NOISE not in html and NOISE not in doc and "division by zero" not in html
    assert m["log_temp_file_count"] >= 1 and m["log_statement_timeout_count"] >= 8 and m["activity_samples"] >= 3
    assert "the demo&#x27;s recorded incident; asked: now-10m to now" in html

    from opsbook.incident.postmortem.recorded import PADDING_S, recorded_between

    found = recorded_between(noise_done, time.time(), config.history_url)
    assert found is not None, "the demo's incident was not recorded"
    start, end = found
    assert abs(m["incident_duration_s"] - (end - start)) < 1, (m, end - start)
    # no timeline row from before the incident's start (less its seconds of padding)
    times = re.findall(r"^\| (\d\d):(\d\d):(\d\d) \|", doc, re.M)
    assert times
    first = math.floor(start - PADDING_S) % 86400
    for h, mi, s in times:
        assert (int(h) * 3600 + int(mi) * 60 + int(s) - first) % 86400 <= end - start + 2 * PADDING_S + 1, \
            (f"{h}:{mi}:{s}", iso(start), iso(end))
    findings = result.sidecar["findings"]
    root = next(f for f in findings if f["check"] == "postmortem.root_cause")
    assert "report_job" in root["objects"] and "pm_branches" in root["title"]
    for problem in RECORDED_PROBLEMS:  # the narrow window still shows all the demo recorded
        assert any(f["check"] == problem.check and f["severity"] in ("warning", "critical")
                   and problem.objects[0] in f"{f['title']} {' '.join(f['objects'])}" for f in findings), problem


@pytest.fixture(scope="module")
def other_prefix_log():
    """A server of its own logging stderr with PREFIX_A: three errors and a statement timeout; then its
    log_line_prefix is changed to PREFIX_B (ALTER SYSTEM + reload), as a target's may be after the incident."""
    from conftest import TEST_SETTINGS, free_port

    home = Path(os.environ["OPSBOOK_HOME"])
    settings = {**TEST_SETTINGS, "logging_collector": "on", "log_destination": "'stderr'", "log_directory": "'log'",
                "log_filename": "'postgresql.log'", "log_rotation_age": "0", "log_rotation_size": "0",
                "log_line_prefix": f"'{PREFIX_A}'"}
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="prefix-", dir=home)) / "data", port=free_port(),
                            settings=settings)
    server.start()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE DATABASE shop")
        log = server.data_dir / "log" / "postgresql.log"
        start = time.time()
        with psycopg.connect(server.conninfo(dbname="shop"), autocommit=True, application_name="checkout") as c:
            for _ in range(3):
                with pytest.raises(psycopg.errors.DivisionByZero):
                    c.execute("SELECT 1/0")
            c.execute("SET statement_timeout = 100")
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute("SELECT pg_sleep(5)")
            c.execute("RESET statement_timeout")
            c.execute("DO $$BEGIN RAISE LOG 'opsbook-test-prefix-incident-over'; END$$")
        end = time.time()
        wait_in_file(log, "opsbook-test-prefix-incident-over")
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute(f"ALTER SYSTEM SET log_line_prefix = '{PREFIX_B}'")
            c.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 20
        while True:  # a reload reaches new sessions once the postmaster has read the file
            with psycopg.connect(server.conninfo(dbname="shop"), autocommit=True) as c:
                if c.execute("SHOW log_line_prefix").fetchone()[0] == PREFIX_B:
                    break
            assert time.monotonic() < deadline, "the reload never changed log_line_prefix"
            time.sleep(0.05)
        folder = server.data_dir.parent
        config = from_dict({"targets": {"shop": {"dsn": server.conninfo(dbname="shop")}},
                            "history": {"url": f"sqlite:///{folder / 'history.sqlite'}"},
                            "reports": {"dir": str(folder / "reports")}})
        yield {"server": server, "log": log, "start": start, "end": end, "config": config}
    finally:
        server.stop()


def test_a_log_written_with_another_prefix_is_read_with_the_detected_one(other_prefix_log, tmp_path):
    """The target's SHOW log_line_prefix (PREFIX_B) matches none of the log's lines: the post-mortem detects
    PREFIX_A from them, finds every event, and its report names the prefix it read with and why."""
    p = other_prefix_log
    params = {"incident_start": iso(p["start"] - 1), "incident_end": iso(p["end"] + 1), "padding_minutes": 1,
              "log_path": str(p["log"])}
    result = run_runbook("post-mortem", "shop", params, config=p["config"], output_dir=tmp_path / "reports")
    assert result.exit_code == 0 and result.sidecar["status"] == "ok", result.sidecar["error"]
    m = result.sidecar["metrics"]
    assert m["log_error_count"] == 3 and m["log_statement_timeout_count"] == 1, m
    html = result.html_path.read_text()
    assert escape(repr(PREFIX_A)) in html and "detected from the log" in html
    assert escape(repr(PREFIX_B)) in html and "SHOW log_line_prefix on the target" in html


def test_a_given_prefix_that_matches_is_kept(other_prefix_log):
    """Detection is the fallback, not the rule: a prefix that matches the log's records reads it as given."""
    from opsbook.logs import plan
    from opsbook.incident.postmortem.evidence import choose_prefixes

    files = plan(other_prefix_log["log"])
    chosen, text = choose_prefixes(files, PREFIX_A, "the log_line_prefix parameter")
    assert list(chosen.values()) == [PREFIX_A] and text == f"{PREFIX_A!r}, from the log_line_prefix parameter"
    chosen, text = choose_prefixes(files, PREFIX_B, "the log_line_prefix parameter")
    assert list(chosen.values()) == [PREFIX_A] and re.search(r"matches [01] of the first 1\d records", text), text
