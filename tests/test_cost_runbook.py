"""The cost-analysis runbook end to end: through the runner on a database built here, and on the demo via the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT
from opsbook.cli import main as cli
from opsbook import cost
from opsbook.config.params import describe

RUNBOOK = ROOT / "runbooks" / "cost-analysis.ipynb"
FIXTURE = Path(__file__).parent / "fixtures" / "cost" / "usage-2026-10.csv"


def test_parameters_cell_declares_what_the_analysis_reads():
    declared = {p.name: p for p in describe(RUNBOOK)}
    assert set(cost.PARAMS) <= set(declared)  # the notebook reads them with globals()[name]
    assert {"target", "thresholds", "savings_min_usd"} <= set(declared)
    assert declared["archive_days"].default == 90 and declared["usage_csv"].type == "str | None"
    assert all(declared[p].default is None for p in cost.PARAMS  # None: from opsbook.toml or measured
               if p not in ("archive_days", "archive_tables"))


def test_checks_share_one_analysis_per_session(db):
    """The cells and the four checks see the same analysis; a new session recomputes it."""
    from opsbook.run.context import Runbook

    cfg = db.config(plan="team", compute="small")
    rb = Runbook("cost-analysis", "test", config=cfg, params={"egress_gb": 400.0})
    rb.connect()
    a = cost.analyse(rb)
    rb.run(cost.CHECKS)
    assert cost.analyse(rb) is a
    assert list(rb.data("cost.savings")["title"]) == [w.title for w in a.whatifs]
    over = [f for f in rb.findings if f.check == "cost.over_quota" and f.objects == ["egress"]]
    assert over[0].value == 13.50 and over[0].severity.value == "warning"  # 150 GB × 0.09, Team has no cap
    assert a.bill.total_usd == 599 + 15.04 - 10 + 13.50
    rb.close()
    again = Runbook("cost-analysis", "test", config=cfg, params={"egress_gb": 400.0})
    again.connect()
    assert cost.analyse(again) is not a
    again.close()


@pytest.mark.slow
def test_runbook_bills_parameters_csv_and_config(db, tmp_path):
    """By hand: Pro 25 + PITR 7 days 100.01 + disk 40 GB configured (32 over) 4.00 + egress 320 GB
    from the parameter (70 over) 6.30 + from the CSV: file storage 0.30, MAU 66.63, invocations 2.00, Realtime
    peak 1.32, messages 2.50, image transformations 0.25 = 208.31 USD."""
    from opsbook.run.runner import run_runbook

    db.execute("""CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, payload text);
                  INSERT INTO events (created_at, payload)
                    SELECT now() - g * interval '1 hour', repeat('x', 60) FROM generate_series(1, 5000) g;
                  CREATE INDEX events_payload_idx ON events (payload); ANALYZE events;""")
    cfg = db.config(plan="pro", compute="micro", spend_cap=False, disk_gb=40, addons={"pitr_days": 7})
    result = run_runbook("cost-analysis", target="test", config=cfg, output_dir=tmp_path,
                         params={"egress_gb": 320.0, "usage_csv": str(FIXTURE), "archive_days": 30})
    side = result.sidecar
    assert side["status"] == "ok", side["error"]
    m = side["metrics"]
    assert m["monthly_cost_usd"] == 208.31
    assert {k: m[f"cost_{k}_usd"] for k in ("plan", "compute", "compute_credits", "pitr", "disk", "egress",
                                            "storage", "mau", "edge_invocations", "realtime_peak_connections",
                                            "realtime_messages", "image_transformations", "cached_egress")} == \
        {"plan": 25.0, "compute": 9.81, "compute_credits": -9.81, "pitr": 100.01, "disk": 4.0, "egress": 6.3,
         "storage": 0.3, "mau": 66.63, "edge_invocations": 2.0, "realtime_peak_connections": 1.32,
         "realtime_messages": 2.5, "image_transformations": 0.25, "cached_egress": 0.0}
    over = {f["objects"][0]: f for f in side["findings"] if f["check"] == "cost.over_quota"}
    assert over["egress"]["severity"] == "warning" and over["egress"]["value"] == 6.3
    assert "parameter" in over["egress"]["detail"] and "usage CSV" in over["mau"]["detail"]
    savings = {f["objects"][0]: f for f in side["findings"] if f["check"] == "cost.savings"}
    assert savings["pitr"]["severity"] == "info" and savings["pitr"]["value"] == 100.01  # a trade-off: info
    checks_seen = {f["check"] for f in side["findings"]}
    assert {"cost.over_quota", "cost.plan_fit", "cost.compute_fit", "cost.savings"} <= checks_seen
    html = result.html_path.read_text()
    assert "Estimated monthly bill" in html and "208.31" in html and "usage-2026-10.csv" in html
    assert "Supabase public prices as researched on 2026-11-21" in html and "Third-party prices" in html
    assert "events_payload_idx" in html  # the unused index behind the index lever


@pytest.mark.slow
def test_demo_egress_acceptance_through_the_cli(demo_database, tmp_path):
    """`opsbook run cost-analysis --target demo -p egress_gb=300 --json`: the egress overage is a bill line and a
    metric; the demo's Pro plan has the spend cap on by default, so it is restricted rather than billed."""
    out = CliRunner().invoke(cli.main, ["run", "cost-analysis", "--target", "demo", "-p", "egress_gb=300",
                                        "--output-dir", str(tmp_path), "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    run = json.loads(out.output)
    m = run["metrics"]
    assert run["status"] == "ok"
    assert m["cost_egress_usd"] == 4.50  # 50 GB over 250 × 0.09
    assert m["cost_spend_cap_usd"] == -4.50 and m["monthly_cost_uncapped_usd"] == m["monthly_cost_usd"] + 4.50
    assert m["monthly_cost_usd"] == 25.00  # Pro, Micro fully covered by credits, everything else within quota
    egress = next(f for f in run["findings"] if f["check"] == "cost.over_quota" and f["objects"] == ["egress"])
    assert egress["severity"] == "warning" and "spend cap" in egress["detail"]
    unmeasured = next(f for f in run["findings"] if f["check"] == "cost.over_quota" and f["severity"] == "info")
    assert "cached_egress" in unmeasured["objects"] and "egress" not in unmeasured["objects"]
    html = Path(run["report_html"]).read_text()
    assert "Egress" in html and "50 GB over the 250 GB included" in html
