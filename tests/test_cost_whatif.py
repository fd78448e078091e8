"""What-if levers against hand-computed savings: archive estimates and unused indexes on a database built here,
compute, plan and PITR re-pricing, and the four cost checks' judgements on hand-made rows."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from opsbook.checks import cost as checks
from opsbook.config import pricing
from opsbook.cost import archive, usage as usage_mod, whatif
from opsbook.cost.analysis import gather
from opsbook.cost.bill import compute_bill
from opsbook.config.billing import resolve
from opsbook.database.session import connect
from opsbook.core.findings import Severity

PRICES = pricing.read_file(pricing.BUILTIN)
GB = usage_mod.GB


@pytest.fixture
def built(db):
    """events: 10,000 rows, 3,000 of them 120 days old, analyzed, with an unused index and a used one;
    notes: 1,000 rows, 250 of them 200 days old, never analyzed (autovacuum off), so it is counted on a sample."""
    db.execute("""
        CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, kind text, payload text);
        INSERT INTO events (created_at, kind, payload)
          SELECT now() - CASE WHEN g <= 3000 THEN interval '120 days' ELSE interval '10 days' END
                 + g * interval '1 second', 'k' || (g % 7), repeat('x', 40) || g
          FROM generate_series(1, 10000) g;
        CREATE INDEX events_payload_idx ON events (payload);
        CREATE INDEX events_created_idx ON events (created_at);
        ANALYZE events;
        CREATE TABLE notes (id int PRIMARY KEY, inserted_at timestamptz, body text) WITH (autovacuum_enabled = off);
        INSERT INTO notes SELECT g, now() - CASE WHEN g <= 250 THEN interval '200 days' ELSE interval '1 day' END,
                                 repeat('n', 100) FROM generate_series(1, 1000) g;
        CREATE TABLE settings_kv (k text PRIMARY KEY, v text);
    """)
    with db.connect() as c:  # use events_created_idx, so only events_payload_idx stays unused
        c.execute("SET enable_seqscan = off")
        c.execute("SELECT count(*) FROM events WHERE created_at < now() - interval '100 days'").fetchall()
        c.execute("SELECT pg_stat_force_next_flush()")
    return db


def sizes(db, *names):
    return [db.execute(f"SELECT pg_total_relation_size('{n}')")[0][0] for n in names]


def test_fraction_older_from_statistics():
    bounds = [0, 10, 20, 30, 40]
    assert archive.fraction_older(25, bounds) == pytest.approx(0.625)  # 2.5 of 4 buckets
    # 10% + 10% in most-common values (one below the cutoff), 20% NULL: 0.1 + 0.6 × 0.625
    assert archive.fraction_older(25, bounds, [5, 35], [0.1, 0.1], 0.2) == pytest.approx(0.475)
    assert archive.fraction_older(-1, bounds) == 0 and archive.fraction_older(99, bounds) == 1
    assert archive.fraction_older(5, [], None) is None


def test_archive_estimate_per_table(built):
    with connect(built.config().target("test")) as s:
        df = archive.estimate(s, 90)
    rows = df.set_index("table_name")
    assert list(df["table_name"][:2]) == ["events", "notes"]  # largest bytes to archive first
    assert "settings_kv" not in rows.index  # no creation-time column
    events_bytes, notes_bytes = sizes(built, "events", "notes")
    ev = rows.loc["events"]
    assert ev["column_name"] == "created_at" and "planner statistics" in ev["method"]
    assert ev["total_bytes"] == events_bytes
    assert ev["older_pct"] == pytest.approx(30, abs=2)  # histogram estimate of exactly 30%
    assert ev["older_bytes"] == pytest.approx(0.30 * events_bytes, rel=0.07)
    nt = rows.loc["notes"]
    assert nt["column_name"] == "inserted_at" and "sampled" in nt["method"]  # no statistics: counted
    assert nt["older_pct"] == 25.0 and nt["older_bytes"] == round(0.25 * notes_bytes)
    with connect(built.config().target("test")) as s:
        only = archive.estimate(s, 90, tables=["public.notes"])
    assert list(only["table_name"]) == ["notes"]


def test_unused_indexes_are_exactly_the_unscanned_non_constraint_ones(built):
    with connect(built.config().target("test")) as s:
        df = s.fetch("cost/unused_indexes")
    assert list(df["index_name"]) == ["events_payload_idx"]
    assert df["size_bytes"].iloc[0] == built.execute("SELECT pg_relation_size('events_payload_idx')")[0][0]


def test_levers_priced_on_the_test_database(built):
    """A 40 GB provisioned disk (configured) for a tiny database: archiving or dropping the index lets it shrink to
    the 8 GB floor after an upgrade: (40 - 8) GB × 0.125 = 4.00 USD a month. PITR and plan by hand as well."""
    cfg = built.config(plan="pro", compute="micro", disk_gb=40, spend_cap=False, addons={"pitr_days": 7})
    with connect(cfg.target("test")) as s:
        a = gather(s, cfg.target("test"), cfg, {"archive_days": 90})
    assert a.bill.amount("disk") == 4.00 and a.bill.total_usd == 25.00 + 4.00 + 100.01
    assert a.trend is None and "opsbook snapshot" in a.trend_note
    assert not Path(cfg.history_url.removeprefix("sqlite:///")).exists()  # a report never creates a store
    levers = {(w.lever, w.title): w for w in a.whatifs}
    by_lever = {w.lever: w for w in a.whatifs if w.lever in ("archive", "unused_indexes", "disk_shrink")}
    assert by_lever["disk_shrink"].delta_usd == -4.00  # the data fits in the 8 GB floor already
    assert by_lever["archive"].delta_usd == -4.00 and "shrink from 40 GB to 8 GB" in by_lever["archive"].detail
    assert "of which 4.00 the shrink alone" in by_lever["archive"].detail
    assert by_lever["unused_indexes"].delta_usd == -4.00 and "events_payload_idx" in by_lever["unused_indexes"].detail
    assert levers[("pitr", "Point-in-time recovery 7 days → off")].delta_usd == -100.01
    assert levers[("pitr", "Point-in-time recovery 7 days → 14 days")].delta_usd == 100.01
    assert levers[("pitr", "Point-in-time recovery 7 days → 28 days")].delta_usd == 301.49  # 401.50 - 100.01
    assert levers[("plan", "Plan Pro → Team")].delta_usd == 574.00
    free = levers[("plan", "Plan Pro → Free")]
    assert free.delta_usd == -129.01 and free.fits and free.tradeoff  # add-ons dropped; not for production
    fitting = [w.delta_usd for w in a.whatifs if w.fits]
    assert fitting == sorted(fitting) and a.whatifs[0].fits  # what fits first, most saved first
    # with the spend cap on, the disk overage is not billed: freeing space saves nothing
    capped = built.config(plan="pro", disk_gb=40, spend_cap=True)
    with connect(capped.target("test")) as s:
        b = gather(s, capped.target("test"), capped, {}, with_history=False)
    arch = next(w for w in b.whatifs if w.lever == "archive")
    assert arch.delta_usd == 0 and "already kept off the bill" in arch.detail


def test_free_space_by_hand():
    u = usage_mod.combine({"database": usage_mod.Quantity("database", 30.0, "test", "")}, {}, {}, {},
                          PRICES.get("disk.autoscale"), disk_gb=(45.0, "test"))
    s = resolve(PRICES, None, {"plan": "pro", "spend_cap": False})
    current = compute_bill(PRICES, u, s)
    assert current.amount("disk") == 4.63  # 37 GB × 0.125 = 4.625
    w = whatif.free_space(PRICES, u, s, current, 10 * GB, "archive", "t", "ten GB")
    # 20 GB left -> shrink to ceil(1.2 × 20) = 24 GB: 16 GB × 0.125 = 2.00
    assert w.delta_usd == -2.63 and w.new_total_usd == 27.00 and "upgrade" in w.caveat
    # the disk is already larger than 30 GB of data needs: ceil(1.2 × 30) = 36 GB, 28 × 0.125 = 3.50
    assert "of which 1.13 the shrink alone" in w.detail
    alone = whatif.shrink_disk(PRICES, u, s, current)
    assert alone.delta_usd == -1.13 and "36 GB" in alone.detail
    small = whatif.free_space(PRICES, u, s, current, 0.5 * GB, "archive", "t", "half a GB")
    assert small.delta_usd == -1.13  # 29.5 GB -> ceil(35.4) = 36 GB as well: archiving adds nothing
    fitted = usage_mod.combine({"database": usage_mod.Quantity("database", 30.0, "test", "")}, {}, {}, {},
                               PRICES.get("disk.autoscale"))
    assert fitted.get("disk") == 41  # 8 -> 12 -> 18 -> 27 -> 41 (40.5 up to a whole GB)
    assert whatif.shrink_disk(PRICES, fitted, s, compute_bill(PRICES, fitted, s)).delta_usd == -0.63  # 41 -> 36


def test_compute_options_and_change():
    s = resolve(PRICES, None, {"plan": "pro", "compute": "micro"})
    df = whatif.compute_options(PRICES, s, peak=55, database_gb=0.3)
    assert "nano" not in set(df["size"])  # billed as Micro in a paid organization: not a choice
    nano = whatif.compute_options(PRICES, resolve(PRICES, None, {"plan": "pro", "compute": "nano"}), 5, 0.3)
    assert nano[nano["current"]]["size"].item() == "micro"
    assert df[df["recommended"]]["size"].item() == "small"  # 55/60 = 92% >= 80%; Small: 55/90 = 61%
    u = usage_mod.combine({"database": usage_mod.Quantity("database", 0.3, "test", "")}, {}, {}, {},
                          PRICES.get("disk.autoscale"))
    w = whatif.change_compute(PRICES, u, s, compute_bill(PRICES, u, s), "small", "why")
    assert w.delta_usd == 5.04  # 15.04 - 10 credits, against Micro fully covered
    big = resolve(PRICES, None, {"plan": "pro", "compute": "large"})
    down = whatif.compute_options(PRICES, big, peak=20, database_gb=0.3)
    assert down[down["recommended"]]["size"].item() == "micro"  # 20/60 = 33% <= 40%, 1 GB RAM >= 0.3/4
    heavy = whatif.compute_options(PRICES, big, peak=20, database_gb=10)
    assert heavy[heavy["recommended"]]["size"].item() == "medium"  # 10 GB of data wants >= 2.5 GB RAM: not Small


def test_judge_over_quota():
    rows = pd.DataFrame([
        {"key": "egress", "item": "Egress", "quantity": 300.0, "unit": "GB", "included": 250.0, "over": 50.0,
         "amount_usd": 4.5, "capped": True, "usage_source": "parameter", "note": "n"},
        {"key": "mau", "item": "Monthly active users", "quantity": 10.0, "unit": "users", "included": 1e5,
         "over": 0.0, "amount_usd": 0.0, "capped": True, "usage_source": "database", "note": "n"},
        {"key": "realtime_messages", "item": "Realtime messages", "quantity": None, "unit": "messages",
         "included": 5e6, "over": 0.0, "amount_usd": 0.0, "capped": True, "usage_source": "not measured",
         "note": "n"}])
    rows.attrs.update(plan="Pro", spend_cap=False, pays_overage=True)
    f = checks.judge_over_quota(rows)
    assert [(x.severity, x.objects) for x in f] == [(Severity.WARNING, ["egress"]),
                                                    (Severity.INFO, ["realtime_messages"])]
    assert f[0].value == 4.5 and "50 over the 250 included (4.50 USD, billed)" in f[0].title
    assert checks.judge_over_quota(rows, critical=4)[0].severity is Severity.CRITICAL
    rows.attrs.update(spend_cap=True)
    capped = checks.judge_over_quota(rows)[0]
    assert capped.severity is Severity.WARNING and "not billed under the spend cap" in capped.title
    assert capped.value == 4.5 and "spend cap" in capped.detail
    free = rows.assign(key="disk", item="Disk size", quantity=0.8, included=0.5, over=0.3, amount_usd=0.0).head(1)
    free.attrs.update(plan="Free", spend_cap=False, pays_overage=False)
    read_only = checks.judge_over_quota(free)[0]
    assert read_only.severity is Severity.CRITICAL and "read-only" in read_only.detail
    ok = checks.judge_over_quota(rows[rows["key"] == "mau"])
    assert ok[0].severity is Severity.OK and "1 measured" in ok[0].title


def test_judge_plan_fit():
    rows = pd.DataFrame([{"key": "mau", "item": "Monthly active users", "used": 86000.0, "quota": 1e5,
                          "unit": "users", "pct_of_quota": 86.0, "days_until_quota": 40.0, "basis": ""}])
    rows.attrs.update(plan="Team", total_usd=600.0, pays_overage=True, over=[],
                      alternatives=[{"plan": "pro", "label": "Pro", "total_usd": 26.0, "delta_usd": -574.0,
                                     "fits": True, "for_production": True},
                                    {"plan": "free", "label": "Free", "total_usd": 0.0, "delta_usd": -600.0,
                                     "fits": False, "for_production": False}])
    f = checks.judge_plan_fit(rows)
    assert [x.severity for x in f] == [Severity.WARNING, Severity.WARNING]
    assert "86%" in f[0].title and "40 days" in f[0].detail
    assert "Pro plan would cost 574.00 USD a month less" in f[1].title
    assert checks.judge_plan_fit(rows, warning=90, min_usd=1000)[0].severity is Severity.OK


def test_judge_compute_fit_and_savings():
    s = resolve(PRICES, None, {"plan": "pro", "compute": "large"})
    df = whatif.compute_options(PRICES, s, peak=20, database_gb=0.3)
    df.attrs.update(peak_source="history: ...", history=True, credits=10.0)
    f = checks.judge_compute_fit(df)[0]
    assert f.severity is Severity.WARNING and "100.74 USD a month less" in f.title  # 110.74 - 10 credits
    df.attrs.update(history=False)
    assert checks.judge_compute_fit(df)[0].severity is Severity.INFO  # one sample: not sure enough to warn
    assert checks.judge_compute_fit(df, downsize=10)[0].severity is Severity.OK  # 33% of Micro is too full
    levers = pd.DataFrame([
        {"lever": "compute", "title": "Compute Large → Micro", "delta_usd": -100.74, "savings_usd": 100.74,
         "new_total_usd": 25.0, "fits": True, "tradeoff": False, "detail": "d", "caveat": "c"},
        {"lever": "pitr", "title": "PITR 7 days → off", "delta_usd": -100.01, "savings_usd": 100.01,
         "new_total_usd": 25.0, "fits": True, "tradeoff": True, "detail": "d", "caveat": "c"},
        {"lever": "archive", "title": "Archive", "delta_usd": -3.0, "savings_usd": 3.0, "new_total_usd": 1.0,
         "fits": True, "tradeoff": False, "detail": "d", "caveat": ""}])
    f = checks.judge_savings(levers)
    assert [(x.severity, x.objects) for x in f] == [(Severity.WARNING, ["compute"]), (Severity.INFO, ["pitr"])]
    assert checks.judge_savings(levers, min_usd=500)[0].severity is Severity.OK


def test_past_months_and_projection_from_real_snapshots(db):
    """Four snapshots a month apart (simulated clock) of a growing table: a bill per past month, three projected."""
    import time

    from opsbook.history import take_snapshot

    cfg = db.config(plan="pro", compute="micro", spend_cap=False)
    target = cfg.target("test")
    now = time.time()
    db.execute("CREATE TABLE grow (x text)")
    with connect(target) as s:
        for days_ago in (80, 50, 20, 1):
            db.execute("INSERT INTO grow SELECT repeat('y', 400) FROM generate_series(1, 20000)")
            take_snapshot(cfg, "test", db=s, as_of=now - days_ago * 86400, simulated=True, heavy=False)
        a = gather(s, target, cfg, {"egress_gb": 300.0})
    months = a.trend.months
    past = sorted({time.strftime("%Y-%m", time.gmtime(now - d * 86400)) for d in (80, 50, 20, 1)})
    assert list(months["month"][months["kind"] == "past"]) == past
    assert list(months["kind"]).count("projected") == 3
    assert months["database_gb"].is_monotonic_increasing  # the table grew, and the fit projects growth
    assert (months["total_usd"] == 29.50).all()  # 25 + egress 50 GB × 0.09, held at this month's value
    assert "database: linear fit over 4 points" in a.trend.note and "stay at this month's values" in a.trend.note
    assert a.peak_source.startswith("history")
