"""The monthly health report reads in two minutes and draws the right conclusions: what started each run (the
sidecar's started_by), a scheduled triage that is no incident, the month in the title, two charts and at most three
screens before the details in a real browser, a window on every number that is not the month's, months in the
schedule's time zone."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import monthly_scenario
from conftest import drop_database, make_database
from lab_kernel import config_file, lab_kernel
from opsbook.config.file import load
from opsbook.core.errors import ParameterError
from opsbook.health.metrics import ReportMetrics
from opsbook.health.month import Month, parse_month
from opsbook.report.charts.monthly import BILL_TITLE
from opsbook.run.runner import run_runbook
from report_checks import offline_sweep  # noqa: F401 - autouse: every page written here loads nothing remote
from report_checks import require_chromium

UTC = dt.timezone.utc
OPSBOOK = Path(sys.executable).parent / "opsbook"
VIEW = {"width": 1280, "height": 800}  # a laptop's browser window: "three screens" are measured in it
SCREENS = 3


# ------------------------------------------------------------------------------------------ months in a zone
def test_months_are_counted_in_the_schedules_time_zone(tmp_path):
    berlin = parse_month("2026-11", dt.datetime(2026, 12, 7, tzinfo=UTC), tz="Europe/Berlin")
    assert berlin.start == dt.datetime(2026, 10, 31, 23, tzinfo=UTC)  # CET: midnight is 23:00 UTC
    assert berlin.end == dt.datetime(2026, 11, 30, 23, tzinfo=UTC) and berlin.label == "November 2026"
    assert berlin.previous().start == dt.datetime(2026, 9, 30, 22, tzinfo=UTC)  # CEST still on Oct 1
    sydney = parse_month(None, dt.datetime(2027, 1, 31, 19, 30, tzinfo=UTC), tz="Australia/Sydney")
    assert sydney.key == "2027-01" and parse_month(None, dt.datetime(2027, 1, 31, 19, 30, tzinfo=UTC)).key == "2026-12"
    with pytest.raises(ParameterError, match="not a time zone name"):
        parse_month("2026-11", tz="Mars/Olympus")
    # a run at 23:30 UTC on Nov 30 is December's in Berlin, November's in UTC
    monthly_scenario.sidecar(tmp_path, "incident-triage", "prod", dt.datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    r = ReportMetrics(tmp_path)
    dec = parse_month("2026-12", dt.datetime(2026, 12, 7, tzinfo=UTC), tz="Europe/Berlin")
    assert len(r.runs(start=dec.start, end=dec.end)) == 1
    assert len(r.runs(start=Month(2026, 11).start, end=Month(2026, 11).end)) == 1
    assert len(r.runs(start=berlin.start, end=berlin.end)) == 0


# ------------------------------------------------------------------------------------------ what started a run
def _triage(cfg: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([str(OPSBOOK), "--config", str(cfg), "run", "incident-triage", "--target", "test", "--json"],
                         capture_output=True, text=True, timeout=300, check=False, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(Path(json.loads(out.stdout)["sidecar"]).read_text())


@pytest.mark.slow
def test_a_scheduled_triage_is_not_an_incident_while_a_cli_one_is(db, tmp_path, monkeypatch):
    """Real runs, each started its own way: `opsbook run` (cli), a fleet's and a schedule's task (run_target, a
    child process), a Lab kernel stepping through the runbook; the monthly report counts a person's runs only."""
    from opsbook.fleet.task import run_target

    monkeypatch.delenv("OPSBOOK_STARTED_BY", raising=False)
    cfg = config_file(tmp_path, db)
    env = {k: v for k, v in os.environ.items() if k != "OPSBOOK_STARTED_BY"}
    assert _triage(cfg, env)["started_by"] == "cli"
    bad = subprocess.run([str(OPSBOOK), "--config", str(cfg), "run", "incident-triage", "--target", "test"],
                         capture_output=True, text=True, timeout=120, check=False,
                         env={**env, "OPSBOOK_STARTED_BY": "robot"})
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "OPSBOOK_STARTED_BY" in bad.stderr, bad
    fleet = run_target("incident-triage", "test", {}, config_path=str(cfg), output_dir=str(tmp_path / "reports"))
    assert json.loads(Path(fleet["result"]["sidecar"]).read_text())["started_by"] == "fleet"
    scheduled = run_target("incident-triage", "test", {}, config_path=str(cfg), output_dir=str(tmp_path / "reports"),
                           started_by="schedule")  # as schedule.runs._attempt calls it
    assert json.loads(Path(scheduled["result"]["sidecar"]).read_text())["started_by"] == "schedule"
    assert "OPSBOOK_STARTED_BY" not in os.environ, "the caller's environment is left as it was"
    with lab_kernel("incident-triage", cfg, monkeypatch) as k:
        k.set_params(target="test")
        for i in k.code[k.code.index(k.params_index) + 1:]:
            k.run(i)
    (lab,) = [json.loads(p.read_text()) for p in (tmp_path / "reports").glob("*/incident-triage--*.json")
              if json.loads(p.read_text()).get("interactive")]
    assert lab["started_by"] == "lab"

    months = {json.loads(p.read_text())["started_at"][:7]
              for p in (tmp_path / "reports").glob("*/incident-triage--*.json") if "." not in p.stem}
    if len(months) > 1:
        pytest.skip(f"the runs straddle a month boundary ({sorted(months)}): no one month holds them all")
    result = run_runbook("monthly-health", "test", {"month": months.pop()}, config=load(str(cfg)))
    assert result.exit_code == 0, result.sidecar["error"]
    m = result.sidecar["metrics"]
    assert m["month_incident_runs"] == 2 and m["month_scheduled_triage_runs"] == 2  # cli + lab; fleet + schedule
    html = result.html_path.read_text()
    assert "2 incident runs (started by a person)" in html
    assert "2 scheduled incident-triage runs (started by fleet and schedule" in html


# ------------------------------------------------------------------------------------------ the report itself
@pytest.fixture(scope="module")
def november(pg, tmp_path_factory):
    """The team's November report (Europe/Berlin months) over three months of history and reports; thresholds
    low enough that many headlines are findings (the top must still fit its three screens)."""
    db = make_database(pg)
    tmp = tmp_path_factory.mktemp("november")
    root = tmp / "reports"
    saved = os.environ.pop("OPSBOOK_STARTED_BY", None)
    try:
        db.execute("SELECT pg_stat_reset()")  # the counters' window starts today: the report must say so
        config = monthly_scenario.build(db, root, f"sqlite:///{tmp / 'history.sqlite'}")
        result = run_runbook("monthly-health", "test", {
            "month": "2026-11", "timezone": "Europe/Berlin",
            "thresholds": {"health.trend": {"warning_pct": 1, "critical_pct": 2}}}, config=config, output_dir=root)
        assert result.exit_code == 0, result.sidecar["error"]
        yield result
    finally:
        if saved is not None:
            os.environ["OPSBOOK_STARTED_BY"] = saved
        drop_database(db)


@pytest.mark.slow
def test_daily_scheduled_triage_raises_no_incident_trend(november):
    s = november.sidecar
    assert s["started_by"] == "cli"
    trends = {f["objects"][0]: f for f in s["findings"] if f["check"] == "health.trend" and f["objects"]}
    assert {"growth_bytes", "monthly_cost_usd"} <= set(trends)  # the low thresholds do judge: both rose
    assert "incident_runs" not in trends and "scheduled_triage_runs" not in trends  # was: "rose to 10 (150% worse)"
    assert s["metrics"]["month_incident_runs"] == 1 and s["metrics"]["month_scheduled_triage_runs"] == 9
    html = november.html_path.read_text()
    assert "9 scheduled incident-triage runs (started by schedule: routine checks, not counted as incidents)" in html


@pytest.mark.slow
def test_the_title_carries_the_month(november):
    html = november.html_path.read_text()
    assert re.search(r"<title>Monthly health of test, November 2026</title>", html)
    assert re.search(r"<h1>Monthly health of test, November 2026 ", html)
    assert "Months run from midnight on the 1st, Europe/Berlin." in html


@pytest.mark.slow
def test_every_number_from_another_window_says_its_window(november):
    today = f"{dt.datetime.now(UTC):%Y-%m-%d}"
    cache = [f for f in november.sidecar["findings"] if f["check"] == "cache.hit_ratio"]
    assert len(cache) == 2 and all(f"since statistics reset on {today}" in f["title"] for f in cache), cache
    html = november.html_path.read_text()
    assert "cache misses during the month (100% - hit ratio)" in html  # the headline: the month's
    assert f"count since statistics reset on {today}, not over November 2026" in html
    assert "at the growth rate of the last 90 days" in html and "(cost analysis of 2026-11-27)" in html


@pytest.mark.slow
def test_the_top_fits_three_screens_with_its_two_charts(november, tmp_path):
    """In headless chromium at 1280x800: the details begin within three screens, and above them the verdict, the
    headline table, the growth chart and the bill chart, both drawn. Screenshots: $OPSBOOK_SCREENSHOTS."""
    require_chromium()
    from report_browser import browser, open_page

    shots = Path(os.environ.get("OPSBOOK_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with browser() as ctx:
        page = open_page(ctx, november.html_path)
        page.set_viewport_size(VIEW)
        facts = page.evaluate("""() => {
          const top = el => el.getBoundingClientRect().top + window.scrollY;
          const details = [...document.querySelectorAll('h2')].find(h => h.textContent.trim().startsWith('Details'));
          const figs = [...document.querySelectorAll('.js-plotly-plot')].map(d => ({
            panels: ((d.layout || {}).annotations || []).map(a => a.text), top: top(d),
            bottom: top(d) + d.getBoundingClientRect().height,
            marks: (d.data || []).map((t, i) => [t.type, d.querySelectorAll(
              `.cartesianlayer .subplot.${i ? `x${i + 1}y${i + 1}` : 'xy'} .trace .point`).length])}));
          return {details: details ? top(details) : null, figs, title: document.title,
                  height: document.documentElement.scrollHeight};
        }""")
        page.screenshot(path=str(shots / "monthly-top.png"))
        page.screenshot(path=str(shots / "monthly-full.png"), full_page=True)
        page.close()
    assert facts["title"] == "Monthly health of test, November 2026"
    assert facts["details"] is not None and facts["details"] <= SCREENS * VIEW["height"], facts
    (chart,) = [f for f in facts["figs"] if f["bottom"] <= facts["details"]]  # above the details, whole
    assert chart["panels"][:2] == ["Database size of test, MB", BILL_TITLE], chart
    assert "November 2026" in chart["panels"]  # the report month, shaded
    drawn = dict(chart["marks"])
    assert drawn["scatter"] == 12 and drawn["bar"] == 3, chart  # drawn: 12 snapshots, three months' bills
