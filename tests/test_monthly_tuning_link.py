"""monthly-health links the month's query tuning in its performance section: a real query-tuning run, then a real
monthly-health run over the same reports folder; and no line where none ran since the month began."""
from __future__ import annotations

import datetime as dt
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import monthly_scenario
import psycopg
import pytest
from opsbook.config.file import from_dict
from opsbook.health.month import parse_month
from opsbook.health.report import MonthlyReport
from opsbook.run.runner import run_runbook

UTC = dt.UTC
SLOW = "SELECT id FROM public.events WHERE account_id = %s"


@pytest.mark.slow
def test_monthly_health_links_the_query_tuning_run_before_it(db, tmp_path):
    db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    db.execute("CREATE TABLE public.events (id bigint PRIMARY KEY, account_id int NOT NULL, payload text)")
    db.execute("INSERT INTO public.events SELECT g, g % 2000, md5(g::text) FROM generate_series(1, 60000) g")
    # the load was long ago: its 60,000 inserts would be this month's write cost (a reset once they were counted)
    _wait_for(db, "SELECT n_tup_ins >= 60000 FROM pg_stat_user_tables WHERE relname = 'events'")
    db.execute("SELECT pg_stat_reset_single_table_counters('public.events'::regclass)")
    _wait_for(db, "SELECT n_tup_ins = 0 FROM pg_stat_user_tables WHERE relname = 'events'")
    db.execute("ANALYZE public.events")
    db.execute("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), "
               "0)")
    with psycopg.connect(db.conninfo, autocommit=True) as c:
        for i in range(30):
            c.execute(SLOW, (i,)).fetchall()
    root = tmp_path / "reports"
    config = from_dict({"targets": {"test": {"dsn": db.conninfo}}, "reports": {"dir": str(root)},
                        "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"}})
    tuning = run_runbook("query-tuning", "test", config=config, output_dir=root)
    assert tuning.exit_code == 0, tuning.sidecar.get("error")
    assert tuning.sidecar["metrics"]["tuning_indexes_proposed"] == 1
    best = tuning.sidecar["metrics"]["tuning_best_saving_pct"]
    assert 50 < best <= 100
    # the last complete month, as a schedule's slot on the 1st reports it: the tuning ran in the same slot, after it
    health = run_runbook("monthly-health", "test", config=config, output_dir=root)
    assert health.exit_code == 0, health.sidecar.get("error")
    html = health.html_path.read_text()
    href = os.path.relpath(tuning.html_path, health.html_path.parent).replace(os.sep, "/")
    day = f"{dt.datetime.now(UTC):%Y-%m-%d}"
    assert re.search(rf'<a href="{re.escape(href)}">query tuning of {day}</a> proposes 1 index, the best saves '
                     rf"{best:.0f}% of the planned cost of its statements\.", html), \
        re.findall(r".{0,200}query tuning.{0,200}", html)[:3]
    performance = html.index("Performance")
    assert html.index(f'href="{href}"') > performance and html.index(f'href="{href}"') < html.index("Maintenance",
                                                                                                   performance)


def _wait_for(d, sql: str, deadline_s: float = 20) -> None:
    """Table statistics reach the views when a backend goes idle or ends: wait for them, with a deadline."""
    end = time.monotonic() + deadline_s
    while not (d.execute(sql) or [[False]])[0][0]:
        if time.monotonic() > end:
            raise AssertionError(f"not true within {deadline_s} s: {sql}")
        time.sleep(0.2)


def _report(root: Path) -> MonthlyReport:
    config = from_dict({"targets": {"prod": {"dsn": "postgresql://nobody@127.0.0.1:1/none"}},
                        "reports": {"dir": str(root)}, "history": {"url": f"sqlite:///{root / 'none.sqlite'}"}})
    rb = SimpleNamespace(config=config, target=SimpleNamespace(name="prod"))
    return MonthlyReport(rb, parse_month("2026-11"))


def test_no_line_when_no_tuning_ran_since_the_month_began(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSBOOK_REPORT_STEM", str(tmp_path / "2026-12-01" / "monthly-health--prod--050000Z"))
    root = tmp_path
    assert _report(root).tuning_line() == ""
    monthly_scenario.sidecar(root, "query-tuning", "prod", dt.datetime(2026, 10, 30, 5, tzinfo=UTC),
                             {"tuning_indexes_proposed": 2, "tuning_best_saving_pct": 80.0})
    assert _report(root).tuning_line() == ""  # October's: not this month's
    monthly_scenario.sidecar(root, "query-tuning", "prod", dt.datetime(2026, 11, 20, 5, tzinfo=UTC),
                             {"tuning_indexes_proposed": 0})
    line = _report(root).tuning_line()
    assert line == ('<p><a href="../2026-11-20/query-tuning--prod--050000Z.html">query tuning of 2026-11-20</a> '
                    "proposes no index.</p>")
    monthly_scenario.sidecar(root, "query-tuning", "prod", dt.datetime(2026, 11, 27, 5, tzinfo=UTC),
                             {"tuning_indexes_proposed": 3, "tuning_best_saving_pct": 91.26})
    assert "query tuning of 2026-11-27</a> proposes 3 indexes, the best saves 91% of the planned cost of its " \
           "statements." in _report(root).tuning_line()
