"""`make demo` as a newcomer runs it: a fresh OPSBOOK_HOME, `opsbook demo`, then `opsbook run ... --json`.

Slow on purpose (it builds its own demo and verifies a real dump): it is the acceptance of the whole product.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from report_checks import STEM, assert_report_files, page_problems

pytestmark = pytest.mark.slow
OPSBOOK = [sys.executable, "-m", "opsbook.cli"]


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory):
    """`opsbook demo` on a machine that has never seen opsbook: its own home, its own reports folder."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=os.environ["OPSBOOK_HOME"]))
    work = tmp_path_factory.mktemp("newcomer")
    env = {**os.environ, "OPSBOOK_HOME": str(home)}
    env.pop("OPSBOOK_CONFIG", None)
    out = subprocess.run([*OPSBOOK, "demo"], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert not (work / "reports").exists()  # the built-in configuration writes under OPSBOOK_HOME, not the cwd
    yield {"out": out, "work": home, "env": env}
    subprocess.run([*OPSBOOK, "db", "stop"], cwd=work, env=env, capture_output=True, timeout=120)


def sidecars(work: Path) -> dict[str, dict]:
    return {p.stem.split("--")[0]: json.loads(p.read_text()) for p in sorted((work / "reports").glob("20*/*.json"))}


def test_demo_ends_with_the_index_listing_every_runbook(fresh_demo):
    out, work = fresh_demo["out"], fresh_demo["work"]
    assert out.returncode == 0, out.stderr[-3000:]
    index = Path(out.stdout.strip().splitlines()[-1])
    assert index == work / "reports" / "index.html" and index.is_file()
    runs = sidecars(work)
    # every runbook in runbooks/ (opsbook demo runs them all), so a new runbook needs no edit here
    assert set(runs) == {p.stem for p in (Path(__file__).resolve().parents[1] / "runbooks").glob("*.ipynb")}
    assert all(s["status"] == "ok" and s["target"] == "demo" for s in runs.values())
    html = index.read_text()
    assert all(f"{name}--demo--" in html for name in runs)


def test_every_demo_report_is_offline_small_and_shares_one_plotly(fresh_demo):
    work = fresh_demo["work"]
    stems = sorted(p.with_suffix("") for p in (work / "reports").glob("20*/*.json"))
    assert len(stems) == len(list((Path(__file__).resolve().parents[1] / "runbooks").glob("*.ipynb")))
    for stem in stems:
        assert_report_files(stem)
        assert stem.with_suffix(".html").stat().st_size < 1_000_000
    assert len(list((work / "reports").glob("plotly-*.min.js"))) == 1


def test_every_demo_report_reads_well_in_a_browser(fresh_demo):
    """Each report and the index as Chromium draws them: charts with marks in a plot area and a height for their
    rows, no placeholder or twice-escaped text, no nan/None/.00 counts/raw bytes in tables, no empty section."""
    from report_browser import browser, measure, newest_reports
    from report_checks import require_chromium

    require_chromium()
    pages = newest_reports(fresh_demo["work"] / "reports")
    assert len(pages) == len(sidecars(fresh_demo["work"])) + 1  # every runbook the demo ran, and the index
    with browser() as ctx:
        problems = {p.name: page_problems(measure(ctx, p)) for p in pages}
    assert not any(problems.values()), json.dumps({k: v for k, v in problems.items() if v}, indent=1)


def test_each_demo_report_finds_what_the_demo_was_built_to_show(fresh_demo):
    runs = sidecars(fresh_demo["work"])

    def worst(runbook: str, check: str) -> str:
        order = ["ok", "info", "warning", "critical"]
        return max((f["severity"] for f in runs[runbook]["findings"] if f["check"] == check), key=order.index)

    # the two public tables without RLS, open to anon
    assert worst("security-audit", "security.rls_disabled") == "critical"
    assert runs["security-audit"]["metrics"]["security_anon_exposed_objects"] >= 2
    # the live incident opened around incident-triage: an idle transaction blocking two sessions
    assert worst("incident-triage", "activity.idle_in_transaction") == "critical"
    assert worst("incident-triage", "locks.blocking") in ("warning", "critical")
    assert runs["incident-triage"]["metrics"]["blocked_sessions"] >= 2
    # the replayed history gives capacity planning a trend, not "no history"
    cap = runs["capacity-planning"]
    assert cap["metrics"]["database_growth_per_day_bytes"] > 0 and cap["metrics"]["days_until_disk_full"] > 0
    assert worst("capacity-planning", "indexes.invalid") in ("warning", "critical")
    # a real dump of the demo, restored and compared
    backup = runs["backup-verification"]
    assert backup["parameters"] == {"take_backup": True}
    assert worst("backup-verification", "backup.restore") == "ok"
    assert backup["metrics"]["rows_verified"] > 1_000_000
    # the demo's accident (recovery.demo_rows): 25 known leads deleted after that dump, found by table-recovery
    assert runs["table-recovery"]["metrics"]["recovery_missing_rows"] == 25
    assert runs["cost-analysis"]["metrics"]["monthly_cost_usd"] == 25.0


def test_run_json_prints_the_contract_object(fresh_demo):
    out = subprocess.run([*OPSBOOK, "run", "incident-triage", "--target", "demo", "--json"],
                         cwd=fresh_demo["work"], env=fresh_demo["env"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    obj = json.loads(out.stdout)
    assert {"status", "runbook", "target", "report_html", "notebook", "sidecar", "findings", "metrics"} <= set(obj)
    assert (obj["status"], obj["runbook"], obj["target"]) == ("ok", "incident-triage", "demo")
    stem = Path(obj["sidecar"]).with_suffix("")
    assert STEM.match(stem.name) and Path(obj["report_html"]) == stem.with_suffix(".html")
    assert json.loads(Path(obj["sidecar"]).read_text())["findings"] == obj["findings"]
