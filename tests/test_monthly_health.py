"""The monthly health report on a real database: two months of snapshots, earlier reports' sidecars, deltas."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from opsbook.config.file import from_dict
from opsbook.core.errors import ParameterError
from opsbook.health.metrics import ReportMetrics
from opsbook.health.month import Month, parse_month
from opsbook.run.runner import run_runbook

UTC = dt.timezone.utc


def test_month_parameter():
    now = dt.datetime(2026, 12, 1, 3, tzinfo=UTC)
    assert parse_month("", now) == Month(2026, 11) and parse_month(None, now).previous() == Month(2026, 10)
    assert parse_month("2026-01", now).previous() == Month(2025, 12) and Month(2026, 12).end.year == 2027
    for bad in ("2026-13", "11/2026", "2026-1", "２０２６-11"):
        with pytest.raises(ParameterError, match="must look like YYYY-MM"):
            parse_month(bad, now)
    with pytest.raises(ParameterError, match="has not begun"):
        parse_month("2027-01", now)


def _sidecar(root: Path, runbook: str, target: str, when: dt.datetime, metrics: dict, findings=(), status="ok"):
    day = root / f"{when:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    stem = day / f"{runbook}--{target}--{when:%H%M%S}Z"
    Path(f"{stem}.json").write_text(json.dumps({
        "runbook": runbook, "target": target, "status": status, "started_at": f"{when:%Y-%m-%dT%H:%M:%SZ}",
        "findings": list(findings), "metrics": metrics, "error": None}))
    Path(f"{stem}.html").write_text("<html></html>")
    return stem


def test_report_metrics_reads_only_the_asked_days(tmp_path):
    root = tmp_path / "reports"
    _sidecar(root, "cost-analysis", "prod", dt.datetime(2026, 10, 31, 23, 59, tzinfo=UTC), {"monthly_cost_usd": 25})
    _sidecar(root, "cost-analysis", "prod", dt.datetime(2026, 11, 2, tzinfo=UTC), {"monthly_cost_usd": 40})
    _sidecar(root, "cost-analysis", "prod", dt.datetime(2026, 11, 20, tzinfo=UTC), {"monthly_cost_usd": 60})
    _sidecar(root, "cost-analysis", "other", dt.datetime(2026, 11, 21, tzinfo=UTC), {"monthly_cost_usd": 999})
    (root / "2026-11-22").mkdir()
    (root / "2026-11-22" / "cost-analysis--prod--000000Z.json").write_text("{half written")
    r = ReportMetrics(root)
    nov = Month(2026, 11)
    assert r.metric("monthly_cost_usd", "cost-analysis", "prod", nov.start, nov.end) == 60
    assert r.metric("monthly_cost_usd", "cost-analysis", "prod", nov.previous().start, nov.start) == 25
    assert [x.started.day for x in r.runs(target="prod", start=nov.start, end=nov.end)] == [2, 20]
    assert r.latest("cost-analysis", "prod").metrics["monthly_cost_usd"] == 60


@pytest.mark.slow
def test_monthly_report_with_two_months_of_history(db, tmp_path):
    from opsbook.history import open_store, take_snapshot

    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    root = tmp_path / "reports"
    config = from_dict({"targets": {"test": {"dsn": db.conninfo, "plan": "pro", "compute": "small"}},
                        "history": {"url": url}, "reports": {"dir": str(root)}})
    db.execute("CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload text)")
    store = open_store(config)
    grow = [(dt.datetime(2026, 10, 3, tzinfo=UTC), 2_000), (dt.datetime(2026, 10, 28, tzinfo=UTC), 2_000),
            (dt.datetime(2026, 11, 2, tzinfo=UTC), 2_000), (dt.datetime(2026, 11, 28, tzinfo=UTC), 150_000)]
    for when, rows in grow:  # October grows a little, November a lot: a trend the report must call out
        db.execute(f"INSERT INTO events (payload) SELECT repeat(md5(g::text), 3) FROM generate_series(1, {rows}) g")
        take_snapshot(config, "test", store=store, as_of=when.timestamp())
    store.close()
    _sidecar(root, "cost-analysis", "test", dt.datetime(2026, 10, 30, 6, tzinfo=UTC), {"monthly_cost_usd": 25.0})
    _sidecar(root, "cost-analysis", "test", dt.datetime(2026, 11, 30, 6, tzinfo=UTC), {"monthly_cost_usd": 61.5})
    incident = _sidecar(root, "incident-triage", "test", dt.datetime(2026, 11, 14, 3, 12, tzinfo=UTC),
                        {"incident_priority": 1})
    _sidecar(root, "backup-verification", "test", dt.datetime(2026, 11, 29, 2, tzinfo=UTC),
             {"backup_age_hours": 3.5, "restore_seconds": 41.0},
             [{"check": "backup.restore", "severity": "ok", "title": "restored"}])
    result = run_runbook("monthly-health", "test", {"month": "2026-11"}, config=config, output_dir=root)
    assert result.exit_code == 0, result.sidecar["error"]
    trends = {f["objects"][0]: f for f in result.sidecar["findings"] if f["check"] == "health.trend" and f["objects"]}
    assert trends["monthly_cost_usd"]["severity"] == "critical"  # 25 -> 61.5 USD: +146%
    assert "estimated monthly bill rose to 61.50 USD" in trends["monthly_cost_usd"]["title"]
    assert trends["growth_bytes"]["severity"] == "critical"  # a few hundred kB in October, > 10 MB in November
    assert "incident_runs" not in trends  # 0 -> 1 is below its noise floor of 2
    m = result.sidecar["metrics"]
    assert m["month_monthly_cost_usd"] == 61.5 and m["month_incident_runs"] == 1
    assert m["month_growth_bytes"] > 10 * 2 ** 20 and m["month_database_size_bytes"] > m["month_growth_bytes"]
    html = result.html_path.read_text()
    assert "In November 2026, test grew by" in html and "61.50 USD" in html
    assert "../2026-11-14/" + incident.name + ".html" in html  # the month's incident, linked relative to the report
    assert "../2026-11-29/backup-verification--test--020000Z.html" in html
    assert "No security-audit report for test yet" in html


@pytest.mark.slow
def test_monthly_report_without_history_or_reports_says_so(db, tmp_path):
    config = from_dict({"targets": {"test": {"dsn": db.conninfo}},
                        "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"},
                        "reports": {"dir": str(tmp_path / "reports")}})
    result = run_runbook("monthly-health", "test", config=config, output_dir=tmp_path / "reports")
    assert result.exit_code == 0, result.sidecar["error"]
    html = result.html_path.read_text()
    assert "holds no snapshot of test in" in html and "No cost analysis has run for this target yet" in html
    (trend,) = [f for f in result.sidecar["findings"] if f["check"] == "health.trend"]
    assert trend["severity"] == "ok" and "no headline number has two months of data" in trend["title"]
    assert not (tmp_path / "history.sqlite").exists()
