"""Bills computed by hand for fixed usages, asserted to the cent; the price list, its overrides and the usage CSV."""
from __future__ import annotations

from pathlib import Path

import pytest

from opsbook.config.file import from_dict
from opsbook.config import pricing
from opsbook.cost import usage as usage_mod
from opsbook.cost.bill import compute_bill, money
from opsbook.config.billing import resolve
from opsbook.core.errors import ConfigError, ParameterError

FIXTURE = Path(__file__).parent / "fixtures" / "cost" / "usage-2026-10.csv"
PRICES = pricing.read_file(pricing.BUILTIN)
AUTOSCALE = PRICES.get("disk.autoscale")


def usage(database_gb: float = 0.3, disk_gb: float | None = None, **items: float) -> usage_mod.Usage:
    """A hand-made month: every item given is 'measured'; the disk follows the database unless given."""
    q = {k: usage_mod.Quantity(k, float(v), "test", "hand-made") for k, v in items.items()}
    q["database"] = usage_mod.Quantity("database", database_gb, "test", "hand-made")
    return usage_mod.combine(q, {}, {}, {}, AUTOSCALE, disk_gb=(disk_gb, "test") if disk_gb else None)


def bill(u, prices=PRICES, **params):
    return compute_bill(prices, u, resolve(prices, None, params))


QUIET = dict(egress=2, cached_egress=1, storage=0.5, mau=1000, edge_invocations=100_000,
             realtime_peak_connections=50, realtime_messages=100_000, image_transformations=0)


def test_money_rounds_half_up_in_decimal():
    assert money(730, 0.0055) == 4.02  # 4.015: binary floats would round it down
    assert money(19, 0.125) == 2.38
    assert money(730, 0.01344) == 9.81


def test_free_plan_within_quota_costs_nothing():
    b = bill(usage(**QUIET), plan="free")
    assert b.total_usd == 0.00
    assert [line.key for line in b.lines][:2] == ["plan", "compute"]
    assert b.line("compute_credits") is None and b.line("spend_cap") is None
    assert all(line.amount_usd == 0 for line in b.lines)
    assert b.settings.compute == "nano"


def test_free_plan_over_quota_is_restricted_not_billed():
    b = bill(usage(database_gb=0.8, **{**QUIET, "mau": 60_000}), plan="free")
    assert b.total_usd == 0.00
    assert {line.key for line in b.over_quota()} == {"disk", "mau"}
    assert "read-only" in b.line("disk").note


def test_pro_with_disk_and_mau_overage():
    # 20 GB of data: the disk grows 8 -> 12 -> 18 -> 27 GB at 90% full; 19 GB over the 8 included.
    b = bill(usage(database_gb=20, **{**QUIET, "mau": 130_000}), plan="pro", compute="micro", spend_cap=False)
    assert b.amount("plan") == 25.00
    assert b.amount("compute") == 9.81  # 730 h × 0.01344
    assert b.amount("compute_credits") == -9.81  # credits cover the whole Micro
    assert b.line("disk").quantity == 27
    assert b.amount("disk") == 2.38  # 19 GB × 0.125 = 2.375, half up
    assert b.amount("mau") == 97.50  # 30,000 × 0.00325
    assert b.total_usd == 124.88
    assert b.metrics()["monthly_cost_usd"] == 124.88
    assert b.metrics()["cost_mau_usd"] == 97.50


def test_team_with_every_metered_overage():
    u = usage(database_gb=5, egress=400, cached_egress=300, storage=150, mau=90_000, edge_invocations=3_500_000,
              realtime_peak_connections=800, realtime_messages=7_000_000, image_transformations=1_100)
    b = bill(u, plan="team", compute="small")
    expected = {"plan": 599.00, "compute": 15.04, "compute_credits": -10.00, "egress": 13.50, "cached_egress": 1.50,
                "disk": 0.00, "storage": 1.05, "mau": 0.00, "edge_invocations": 3.00,
                "realtime_peak_connections": 3.00, "realtime_messages": 5.00, "image_transformations": 5.00}
    assert {k: b.amount(k) for k in expected} == expected
    assert b.total_usd == 636.09
    assert not b.settings.spend_cap and b.line("spend_cap") is None


def test_spend_cap_removes_covered_overage_but_not_add_ons():
    u = usage(database_gb=20, **{**QUIET, "mau": 130_000, "egress": 300})
    b = bill(u, plan="pro", spend_cap=True, pitr_days=7)
    assert b.amount("egress") == 4.50 and b.amount("disk") == 2.38 and b.amount("mau") == 97.50
    assert b.amount("spend_cap") == -104.38
    assert b.amount("pitr") == 100.01  # 730 h × 0.137: the cap never covers PITR
    assert b.total_usd == 125.01
    assert b.uncapped_usd == 229.39
    assert "restricts" in b.line("spend_cap").note


def test_pro_spend_cap_is_on_by_default():
    b = bill(usage(**{**QUIET, "egress": 300}), plan="pro")
    assert b.settings.spend_cap and b.settings.sources["spend_cap"].startswith("Supabase's default")
    assert b.amount("egress") == 4.50 and b.amount("spend_cap") == -4.50 and b.total_usd == 25.00


@pytest.mark.parametrize("compute, gross, total", [("nano", 9.81, 25.00),  # billed as Micro on paid plans
                                                    ("micro", 9.81, 25.00), ("small", 15.04, 30.04),
                                                    ("medium", 60.01, 75.01), ("large", 110.74, 125.74),
                                                    ("xl", 210.02, 225.02)])
def test_compute_size_less_credits(compute, gross, total):
    b = bill(usage(**QUIET), plan="pro", compute=compute)
    assert b.amount("compute") == gross
    assert b.amount("compute_credits") == -min(10.0, gross)
    assert b.total_usd == total


@pytest.mark.parametrize("params, key, amount, total", [
    ({"pitr_days": 7}, "pitr", 100.01, 125.01),  # 730 × 0.137
    ({"pitr_days": 14}, "pitr", 200.02, 225.02),  # 730 × 0.274
    ({"pitr_days": 28}, "pitr", 401.50, 426.50),  # 730 × 0.55
    ({"custom_domain": True}, "custom_domain", 10.00, 35.00),  # 730 × 0.0137 = 10.001
    ({"ipv4": True}, "ipv4", 4.02, 29.02),  # 730 × 0.0055 = 4.015
    # one address per database, replicas included; + the replica's Micro 9.81 and disk 1.25 × 8 GB × 0.125
    ({"ipv4": True, "read_replicas": 1}, "ipv4", 8.03, 44.09),
    ({"read_replicas": 1}, "read_replicas_compute", 9.81, 36.06),  # Micro, no credits; disk 1.25
    ({"read_replicas": 2}, "read_replicas_disk", 2.50, 47.12),  # 2 × 1.25 × 8 GB × 0.125; compute 2 × 9.8112
    ({"log_drains": 1}, "log_drains", 60.01, 85.01),  # 730 × 0.0822 = 60.006
    ({"disk_iops": 4000}, "disk_iops", 24.00, 49.00),  # 1,000 above 3,000 × 0.024
    ({"disk_throughput_mbps": 200}, "disk_throughput", 7.13, 32.13),  # 75 above 125 × 0.095 = 7.125
])
def test_each_add_on(params, key, amount, total):
    b = bill(usage(**QUIET), plan="pro", compute="micro", **params)
    assert b.amount(key) == amount
    assert b.total_usd == total
    assert b.amount("spend_cap") == 0  # the cap covers none of them


def test_replica_disk_under_the_spend_cap_stays_at_the_included_size():
    u = usage(database_gb=20, **QUIET)  # 27 GB needed, but the cap keeps the primary at 8 GB
    assert bill(u, plan="pro", read_replicas=1, spend_cap=True).amount("read_replicas_disk") == 1.25
    assert bill(u, plan="pro", read_replicas=1, spend_cap=False).amount("read_replicas_disk") == 4.22  # 33.75 GB


def test_all_add_ons_together():
    b = bill(usage(**QUIET), plan="pro", pitr_days=7, ipv4=True, custom_domain=True, read_replicas=1, log_drains=1)
    # 25 + PITR 100.01 + IPv4 2 × 4.015 + domain 10.00 + replica 9.81 + replica disk 1.25 + drain 60.01
    assert b.total_usd == 214.11


def test_usage_csv_aggregates_and_prices():
    q, notes = usage_mod.read_csv(FIXTURE)
    values = {k: v.value for k, v in q.items()}
    assert values == pytest.approx({"egress": 300, "cached_egress": 150, "edge_invocations": 3_000_000,
                                    "realtime_messages": 6_000_000, "realtime_peak_connections": 632,
                                    "image_transformations": 150, "mau": 120_500, "storage": 114.5})
    assert any("Branching Compute Hours" in n for n in notes)
    assert q["egress"].source == "usage CSV" and "sum of 30 rows" in q["egress"].detail
    u = usage_mod.combine({"database": usage_mod.Quantity("database", 0.3, "database", "sql")}, q, {}, {}, AUTOSCALE)
    b = bill(u, plan="pro", spend_cap=False)
    # egress 50 × 0.09, storage 14.5 × 0.021, MAU 20,500 × 0.00325, 1 M invocations × 2, 132 peak × 0.01,
    # 1 M messages × 2.5, 50 images × 0.005
    assert {k: b.amount(k) for k in ("egress", "storage", "mau", "edge_invocations", "realtime_peak_connections",
                                     "realtime_messages", "image_transformations")} == \
        {"egress": 4.50, "storage": 0.30, "mau": 66.63, "edge_invocations": 2.00, "realtime_peak_connections": 1.32,
         "realtime_messages": 2.50, "image_transformations": 0.25}
    assert b.total_usd == 102.50


def test_parameters_win_over_csv_which_wins_over_sql():
    sql = {"mau": usage_mod.Quantity("mau", 1000, "database", "auth.users")}
    csv_q, _ = usage_mod.read_csv(FIXTURE)
    u = usage_mod.combine(sql, csv_q, usage_mod.from_params({"egress_gb": 42.0}), {}, AUTOSCALE)
    assert u.quantity("mau").source == "usage CSV" and "database says 1,000" in u.quantity("mau").detail
    assert u.quantity("egress").value == 42 and u.quantity("egress").source == "parameter"
    assert u.quantity("realtime_messages").source == "usage CSV"
    assert u.quantity("disk").value is None  # no database size, no disk size: not estimated
    nothing = usage_mod.combine({}, {}, {}, {}, AUTOSCALE)
    assert nothing.quantity("egress").value is None and "-p egress_gb" in nothing.quantity("egress").detail


def test_bad_usage_csv_is_a_parameter_error(tmp_path):
    bad = tmp_path / "u.csv"
    bad.write_text("day,amount\n2026-10-01,3\n")
    with pytest.raises(ParameterError, match="metric and usage"):
        usage_mod.read_csv(bad)
    bad.write_text("metric,usage,unit\nEgress,12,furlongs\n")
    with pytest.raises(ParameterError, match="unit 'furlongs'"):
        usage_mod.read_csv(bad)


# ------------------------------------------------------------------ the price list
def test_every_figure_has_a_source_and_a_date():
    assert len(PRICES.figures) > 100
    for f in PRICES.figures.values():
        assert f.source and f.as_of, f
    assert PRICES.figure("addons.ipv4_usd_hour").as_of == "2024-08-07"  # its own date, not the table's
    assert PRICES.figure("items.egress.overage_usd").cite() == "S3, S4, S9, as of 2026-08-26"
    assert PRICES.get('rds.instances."db.t4g.micro".usd_hour') == 0.016


def test_overrides_from_config_global_then_target(tmp_path):
    cfg = from_dict({"pricing": {"as_of": "2027-01-05", "items": {"egress": {"overage_usd": 0.08}}},
                     "targets": {"prod": {"dsn": "host=x", "plan": "pro",
                                          "pricing": {"items": {"egress": {"overage_usd": {
                                              "value": 0.07, "source": "our contract", "as_of": "2027-02-01"}}},
                                              "plans": {"enterprise": {"usd_month": 2000}}}}}})
    glob = pricing.load(cfg)
    assert glob.get("items.egress.overage_usd") == 0.08
    assert glob.figure("items.egress.overage_usd").as_of == "2027-01-05"
    prod = pricing.load(cfg, cfg.target("prod"))
    assert prod.figure("items.egress.overage_usd").source == "our contract"
    assert prod.get("plans.enterprise.usd_month") == 2000
    assert "2 overrides" in prod.describe() or "3 overrides" in prod.describe()
    b = bill(usage(**{**QUIET, "egress": 300}), prices=prod, spend_cap=False)
    assert b.amount("egress") == 3.50  # 50 GB × 0.07


def test_price_file_and_refusals(tmp_path):
    own = tmp_path / "prices.toml"
    text = pricing.BUILTIN.read_text().replace('[plans.pro]\nlabel = "Pro"\nsource = "S9, S10"\nas_of = "2026-08-26"\n'
                                               'usd_month = 25', '[plans.pro]\nlabel = "Pro"\nsource = "S9, S10"\n'
                                               'as_of = "2027-03-01"\nusd_month = 30')
    own.write_text(text)
    (tmp_path / "opsbook.toml").write_text('[pricing]\nfile = "prices.toml"\n')
    from opsbook.config.file import load
    p = pricing.load(load(tmp_path / "opsbook.toml"))
    assert p.get("plans.pro.usd_month") == 30 and str(own) in p.describe()
    with pytest.raises(ConfigError, match="items.egres"):
        pricing.load(from_dict({"pricing": {"items": {"egres": {"overage_usd": 1}}}}))
    with pytest.raises(ConfigError, match="usd_hours"):
        pricing.load(from_dict({"pricing": {"compute": {"micro": {"usd_hours": 1}}}}))
    nosource = tmp_path / "nosource.toml"
    nosource.write_text('[plans.pro]\nusd_month = 25\n[items.egress]\noverage_usd = 0.09\n[compute.micro]\n'
                        'usd_hour = 0.01\n')
    with pytest.raises(ConfigError, match="plans.pro.usd_month has no source"):
        pricing.read_file(nosource)


def test_invalid_settings_are_refused():
    with pytest.raises(ParameterError, match="only Pro"):
        resolve(PRICES, None, {"plan": "team", "spend_cap": True})
    with pytest.raises(ParameterError, match="no add-ons"):
        resolve(PRICES, None, {"plan": "free", "pitr_days": 7})
    with pytest.raises(ParameterError, match="pitr_days must be one of"):
        resolve(PRICES, None, {"plan": "pro", "pitr_days": 10})
    with pytest.raises(ConfigError, match="compute size 'huge'"):
        resolve(PRICES, None, {"compute": "huge"})
    with pytest.raises(ConfigError, match="custom pricing"):
        bill(usage(**QUIET), plan="enterprise")
    with pytest.raises(ConfigError, match="unknown add-on 'pitr'"):  # refused when the configuration is read
        from_dict({"targets": {"prod": {"dsn": "host=x", "plan": "pro", "addons": {"pitr": 7}}}})


def test_settings_from_config_and_parameters():
    cfg = from_dict({"targets": {"prod": {"dsn": "host=x", "plan": "team", "compute": "large", "spend_cap": False,
                                          "addons": {"pitr_days": 14, "ipv4": True}}}})
    s = resolve(PRICES, cfg.target("prod"), {"ipv4": False, "egress_gb": None})
    assert (s.plan, s.compute, s.pitr_days, s.ipv4) == ("team", "large", 14, False)
    assert s.sources["pitr_days"].endswith(".addons") and s.sources["ipv4"] == "parameter"
    demo = resolve(PRICES, from_dict({}).target("demo"), {})
    assert (demo.plan, demo.compute, demo.spend_cap) == ("pro", "micro", True)
