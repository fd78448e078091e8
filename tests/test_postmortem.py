"""The post-mortem runbook through the runner, on a real incident recorded by `opsbook watch` and logged by the
server in csvlog, jsonlog and stderr at once; and with the history only, the logs only, bad parameters."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest

from opsbook.logs import count_kinds, iter_events
from opsbook.run.runner import run_runbook

pytestmark = pytest.mark.slow


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def run(inc, tmp_path, **params):
    params = {"incident_start": iso(inc.start - 1), "incident_end": iso(inc.end + 1), "padding_minutes": 1,
              "title": "checkout outage", "severity": "P1", **params}
    result = run_runbook("post-mortem", "shop", params, config=inc.config, output_dir=tmp_path / "reports")
    assert result.exit_code == 0 and result.sidecar["status"] == "ok", result.sidecar["error"]
    return result


def findings(sidecar, check):
    return [f for f in sidecar["findings"] if f["check"] == check]


@pytest.fixture(scope="module")
def logs_only_folder(incident_log, tmp_path_factory):
    """Each format alone in its own folder (the server's log folder holds all three)."""
    out = {}
    for ext in ("csv", "json", "log"):
        d = tmp_path_factory.mktemp(f"log-{ext}")
        shutil.copy(incident_log.file(ext), d / incident_log.file(ext).name)
        out[ext] = d
    return out


def test_runbook_counts_every_event_as_the_log_has_it_and_names_the_root_blocker(incident_log, logs_only_folder,
                                                                                  tmp_path):
    inc = incident_log
    result = run(inc, tmp_path, log_path=str(logs_only_folder["csv"]))
    m = result.sidecar["metrics"]
    truth = count_kinds(iter_events(inc.file("csv"), since=iso(inc.start - 1), until=iso(inc.end + 1)))
    for kind in ("error", "fatal", "deadlock", "lock_wait", "statement_timeout", "too_many_connections",
                 "temp_file", "checkpoint", "autovacuum", "authentication_failed"):
        assert m[f"log_{kind}_count"] == truth.get(kind, 0), kind
    assert m["log_statement_timeout_count"] == inc.incident.timeouts
    assert m["log_deadlock_count"] == 1 and m["log_too_many_connections_count"] == inc.incident.refused
    assert m["blocked_sessions_max"] >= 1 and m["activity_samples"] >= 4
    assert 0 < m["incident_duration_s"] <= inc.end - inc.start + 3
    (first, *rest) = findings(result.sidecar, "postmortem.root_cause")
    assert f"pid {inc.incident.holder_pid}" in first["objects"] and "report_job" in first["objects"]
    assert "pm_branches" in first["title"] and "idle in transaction" in first["title"]
    assert "UPDATE pm_branches SET balance = balance + 1 WHERE id = 1" in first["detail"]
    assert first["severity"] == "critical" and f"{inc.incident.timeouts} statement(s) were cancelled" in first["title"]
    assert {"deadlock", "connections"} <= {r["title"].split(" ", 2)[1] for r in rest} or len(rest) >= 2
    doc = result.html_path.with_suffix(".md").read_text()
    assert doc.startswith("# Post-mortem: checkout outage") and "**Severity:** P1" in doc
    assert "report_job" in doc and "## Action items" in doc
    html = result.html_path.read_text()
    assert "INCIDENT RESOLVED" in html and "RECOVERY UPDATE" in html and "INCIDENT ALERT - P1" in html


def postmortem(inc, config=None, **params):
    """The runbook's library layer without a kernel: what its cells compute."""
    from opsbook.run.context import Runbook
    from opsbook.incident.postmortem import PostMortem

    rb = Runbook("post-mortem", "shop", config=config or inc.config)
    rb.connect()
    pm = PostMortem(rb, **{"incident_start": iso(inc.start - 1), "incident_end": iso(inc.end + 1),
                           "padding_minutes": 1, **params})
    pm.judge()
    rb.close()
    return pm


@pytest.mark.parametrize("ext", ["json", "log"])
def test_jsonlog_and_stderr_give_the_same_counts_and_cause(incident_log, logs_only_folder, ext):
    inc = incident_log
    truth = count_kinds(iter_events(inc.file("csv"), since=iso(inc.start - 1), until=iso(inc.end + 1)))
    pm = postmortem(inc, log_path=str(logs_only_folder[ext]))  # stderr: the prefix comes from SHOW
    assert not pm.ev.log.problems, pm.ev.log.problems
    quiet = ("connection", "disconnection", "other")  # the tests' own sessions add these after the incident
    assert {k: v for k, v in pm.ev.log.counts.items() if k not in quiet} == \
        {k: v for k, v in truth.items() if k not in quiet}
    first = [f for f in pm.findings if f.check == "postmortem.root_cause"][0]
    assert f"pid {inc.incident.holder_pid}" in first.objects and "report_job" in first.objects
    assert all(pm.window.inside(e.ts) for e in pm.ev.log.events if e.kind == "statement_timeout")


def test_logs_only(incident_log, logs_only_folder, tmp_path):
    inc = incident_log
    from opsbook.config.file import from_dict

    no_history = from_dict({"targets": {"shop": {"dsn": inc.conninfo}},
                            "history": {"url": f"sqlite:///{tmp_path / 'none.sqlite'}"}})
    pm = postmortem(inc, no_history, log_path=str(logs_only_folder["csv"]))
    assert pm.ev.log.counts["statement_timeout"] == inc.incident.timeouts and not pm.ev.ok_samples
    assert any("no history store yet" in m for m in pm.ev.missing)
    first = [f for f in pm.findings if f.check == "postmortem.root_cause"][0]
    assert f"pid {inc.incident.holder_pid}" in first.objects and "report_job" in first.objects
    assert "statement is not in the evidence" in first.detail  # the log names only the waiters' statements


def test_the_targets_log_path_in_the_config_is_read_without_the_parameter(incident_log, logs_only_folder, tmp_path):
    inc = incident_log
    from opsbook.config.file import from_dict

    configured = from_dict({"targets": {"shop": {"dsn": inc.conninfo, "log_path": str(logs_only_folder["csv"])}},
                            "history": {"url": f"sqlite:///{tmp_path / 'none.sqlite'}"}})
    pm = postmortem(inc, configured)  # no log_path parameter
    assert pm.log_path == str(logs_only_folder["csv"])
    assert pm.ev.log.counts["statement_timeout"] == inc.incident.timeouts


def test_history_only_through_the_runner(incident_log, tmp_path):
    inc = incident_log
    hist = run(inc, tmp_path)  # no log_path
    m = hist.sidecar["metrics"]
    assert "log_error_count" not in m and m["activity_samples"] >= 4 and m["blocked_sessions_max"] >= 1
    (first, *_) = findings(hist.sidecar, "postmortem.root_cause")
    assert f"pid {inc.incident.holder_pid}" in first["objects"] and "pm_branches" in first["title"]
    assert "UPDATE pm_branches SET balance = balance + 1 WHERE id = 1" in first["detail"]
    assert [f.get("skipped") is not None for f in findings(hist.sidecar, "postmortem.timeouts")] == [True]
    assert "no server log given" in hist.html_path.read_text()


@pytest.mark.parametrize("params,msg", [
    ({"incident_start": "yesterday"}, "is not a time"),
    ({"incident_start": "2026-11-21T22:40:00"}, "has no time zone"),
    ({"incident_start": "now", "incident_end": "now-1h"}, "must be after incident_start"),
    ({"severity": "P7"}, "must be one of P0, P1, P2, P3"),
    ({"padding_minutes": -1}, "padding_minutes"),
])
def test_bad_parameters_say_what_to_do(params, msg):
    from opsbook.core.errors import ParameterError
    from opsbook.incident.postmortem.window import check_severity, make_window

    with pytest.raises(ParameterError, match=msg):
        make_window(params.get("incident_start", "now-1h"), params.get("incident_end", "now"),
                    params.get("padding_minutes", 30))
        check_severity(params.get("severity", "P2"))


def test_relative_and_iso_times():
    from opsbook.incident.postmortem.window import parse_when

    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_when("now-2h", now=now) == datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    assert parse_when("now - 30m", now=now).minute == 30
    assert parse_when("2026-12-01T13:00:00+01:00") == now
    assert parse_when("2026-12-01T12:00:00Z") == now
