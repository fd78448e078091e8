"""No invented numbers: on plain PostgreSQL without `plan`, cost-analysis prices nothing, says so and shows the
usage it measured; monthly-health repeats no bill for it. A configured plan keeps the bill."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from opsbook.config.file import from_dict
from opsbook.cost.analysis import gather
from opsbook.cost.unpriced import NOT_PRICED
from opsbook.database.session import connect
from opsbook.run.runner import run_runbook

UTC = dt.timezone.utc


def _config(db, root, **target):
    return from_dict({"targets": {"test": {"dsn": db.conninfo, **target}},
                      "history": {"url": f"sqlite:///{root.parent / 'history.sqlite'}"},
                      "reports": {"dir": str(root)}})


def test_plain_target_without_plan_is_not_priced(db, tmp_path):
    """Failed before: plan Pro assumed, a 25 USD bill and levers priced for a server that is no Supabase project."""
    cfg = _config(db, tmp_path / "reports")
    with connect(cfg.target("test")) as s:
        a = gather(s, cfg.target("test"), cfg, {"egress_gb": 12.0}, with_history=False)
    assert not a and a.unpriced == NOT_PRICED
    assert a.bill is None and a.settings is None and a.whatifs == [] and a.alternatives == []
    assert a.usage.quantity("database").value > 0 and a.usage.quantity("egress").value == 12.0
    assert "disk" not in a.usage.quantities  # no disk size estimated by Supabase's auto-scaling rule
    assert a.peak >= 1 and a.max_connections == 60


def test_configured_plan_keeps_the_bill(db, tmp_path):
    """plan = "pro" on the same plain server: today's bill, 25 USD (micro compute covered by the credits)."""
    cfg = _config(db, tmp_path / "reports", plan="pro")
    with connect(cfg.target("test")) as s:
        a = gather(s, cfg.target("test"), cfg, {}, with_history=False)
    assert a and a.bill.total_usd == 25.0 and a.settings.plan == "pro"


@pytest.mark.slow
def test_runbook_and_monthly_health_show_no_bill(db, tmp_path):
    """Through the runner: cost-analysis says why nothing is priced, shows the usage, records no cost metric; then
    monthly-health of this month shows no bill, even beside an earlier run of the month that recorded one (as
    opsbook did before). Failed before: 25 USD, "switch to Free", and the manager's report repeated 25 USD."""
    root = tmp_path / "reports"
    cfg = _config(db, root)
    now = dt.datetime.now(UTC)
    earlier = now.replace(day=1, hour=0, minute=0, second=1, microsecond=0)
    if earlier < now - dt.timedelta(seconds=2):  # an invented bill recorded earlier this month, as before the fix
        day = root / f"{earlier:%Y-%m-%d}"
        day.mkdir(parents=True)
        (day / "cost-analysis--test--000001Z.json").write_text(json.dumps({
            "runbook": "cost-analysis", "target": "test", "status": "ok", "started_at": f"{earlier:%Y-%m-%dT%H:%M:%SZ}",
            "findings": [], "metrics": {"monthly_cost_usd": 25.0}, "error": None}))
        (day / "cost-analysis--test--000001Z.html").write_text("<html></html>")

    cost = run_runbook("cost-analysis", target="test", config=cfg, output_dir=root)
    side = cost.sidecar
    assert side["status"] == "ok", side["error"]
    assert not any("cost" in k or "usd" in k for k in side["metrics"]), side["metrics"]
    by_check = {f["check"]: f for f in side["findings"]}
    assert set(by_check) >= {"cost.over_quota", "cost.plan_fit", "cost.compute_fit", "cost.savings"}
    for f in side["findings"]:
        if f["check"].startswith("cost."):
            assert f["severity"] == "info" and f["skipped"] == NOT_PRICED and f["title"] == NOT_PRICED, f
    assert by_check["cost.over_quota"]["detail"].startswith("Measured: database ")
    assert "egress not known" in by_check["cost.over_quota"]["detail"]
    assert "connections" in by_check["cost.over_quota"]["detail"]
    assert not any("USD" in f["title"] + (f["detail"] or "") or "Free" in f["title"] for f in side["findings"])
    page = cost.html_path.read_text()
    assert "No bill computed" in page and NOT_PRICED in page
    assert "Estimated monthly bill" not in page and "25.00" not in page

    health = run_runbook("monthly-health", target="test", config=cfg, output_dir=root,
                         params={"month": f"{now:%Y-%m}"})
    assert health.sidecar["status"] == "ok", health.sidecar["error"]
    assert health.sidecar["metrics"].get("month_monthly_cost_usd") is None
    text = health.html_path.read_text()
    assert "25.00 USD" not in text and "estimated monthly bill is" not in text.lower()
    assert "computed no bill" in text


def test_supabase_shaped_target_without_plan_is_still_priced(tmp_path_factory, tmp_path):
    """Supabase's API roles and an auth schema, no plan configured: today's behaviour, Pro assumed and said so.
    A server of its own: the roles are cluster-wide, and other tests read their absence as plain PostgreSQL."""
    from conftest import _server, make_database

    server = _server(tmp_path_factory, "cost-supabase")
    try:
        d = make_database(server)
        d.execute("CREATE ROLE anon NOLOGIN; CREATE ROLE authenticated NOLOGIN; CREATE SCHEMA auth")
        cfg = _config(d, tmp_path / "reports")
        with connect(cfg.target("test")) as s:
            a = gather(s, cfg.target("test"), cfg, {}, with_history=False)
            plain = make_database(server)  # same cluster, same roles, no auth schema: not a Supabase project
            cfg_plain = _config(plain, tmp_path / "reports")
            with connect(cfg_plain.target("test")) as p:
                b = gather(p, cfg_plain.target("test"), cfg_plain, {}, with_history=False)
        assert a and a.settings.plan == "pro" and a.settings.sources["plan"].startswith("assumed")
        assert a.bill.total_usd == 25.0
        assert not b and b.unpriced == NOT_PRICED
    finally:
        server.stop()
