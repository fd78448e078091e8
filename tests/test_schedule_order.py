"""The order within a slot: the schedules whose runbooks feed another's report run first, and a reader waits while
a job feeding it retries, so that monthly-health links the capacity report of its own slot, not last month's."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest

from conftest import _server, make_database
from opsbook.config.file import from_dict
from opsbook.run.runner import runbook_meta, runbook_names
from opsbook.schedule import order
from opsbook.schedule.jobs import WAITING_FEED, JobStore
from opsbook.schedule.runs import run_due

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
SLOT = dt.datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # 06:00 on December 1 in Berlin: it reports November


@pytest.fixture(autouse=True)
def real_runbooks(monkeypatch):
    monkeypatch.delenv("OPSBOOK_RUNBOOKS", raising=False)


def _config(tmp_path, dsn: str, **capacity) -> dict:
    """monthly-health listed first, capacity-planning second, on the same slot."""
    slot = {"targets": ["app"], "cron": "0 6 1 * *", "timezone": "Europe/Berlin"}
    return from_dict({"targets": {"app": {"dsn": dsn}},
                      "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"},
                      "reports": {"dir": str(tmp_path / "reports")},
                      "schedules": [{"name": "health", "runbook": "monthly-health", **slot},
                                    {"name": "capacity", "runbook": "capacity-planning", **slot, **capacity}]})


def _links(reader_sidecar: str, fed_sidecar: str) -> bool:
    """Whether the reader's HTML report links the fed report's HTML (a relative link that works offline)."""
    page = Path(reader_sidecar).with_suffix(".html")
    rel = os.path.relpath(Path(fed_sidecar).with_suffix(".html"), page.parent).replace(os.sep, "/")
    return f'href="{rel}"' in page.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------ the table
def test_the_table_names_what_each_reader_reads():
    """READS agrees with the code: the runbooks monthly-health's notebook and the health package name are the ones
    it waits for, and the readers are the runbooks that say `after_others` (run_all's order)."""
    names = set(runbook_names())
    nb = json.loads((ROOT / "runbooks" / "monthly-health.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    text += "\n".join(p.read_text() for p in (ROOT / "lib" / "opsbook" / "health").glob("*.py"))
    named = {m for m in re.findall(r"[\"']([a-z]+(?:-[a-z]+)+)[\"']", text) if m in names} - {"monthly-health"}
    assert set(order.READS["monthly-health"]) == named
    assert set(order.READS) == {n for n in names if runbook_meta(n).get("after_others")}
    assert all(r in names for reads in order.READS.values() for r in reads)


def test_readers_come_after_what_they_read_and_keep_the_configured_order_otherwise():
    from types import SimpleNamespace as S

    given = [S(name="h", runbook="monthly-health"), S(name="t", runbook="incident-triage"),
             S(name="c", runbook="capacity-planning"), S(name="e", runbook="empty")]
    assert [s.name for s in order.ordered(given)] == ["t", "c", "e", "h"]
    assert order.feeders(given[0], given) == ["t", "c"]
    assert order.feeders(given[2], given) == []


# ------------------------------------------------------------------------------------------ real runs
def test_a_shared_slot_runs_capacity_first_and_monthly_health_links_it(tmp_path, db):
    config = _config(tmp_path, db.conninfo)
    outcomes = run_due(config, now=SLOT)
    assert [(o.schedule, o.status) for o in outcomes] == [("capacity", "ok"), ("health", "ok")], \
        [o.line() for o in outcomes]
    capacity, health = outcomes
    assert _links(health.report, capacity.report)  # made seconds before, in the same slot


def test_monthly_health_waits_while_capacity_retries_then_links_its_report(tmp_path, tmp_path_factory):
    server = _server(tmp_path_factory, "order")  # this test's own server: it stops and starts it
    try:
        d = make_database(server)
        config = _config(tmp_path, d.conninfo, max_attempts=2, retry_backoff_s=60)
        server.stop()  # down at the slot: capacity-planning fails its first attempt
        said: list[str] = []
        (first,) = run_due(config, now=SLOT, progress=said.append)
        assert (first.schedule, first.status) == ("capacity", "retrying"), first.line()
        assert "health on app: waits for capacity (retrying)" in said
        store = JobStore(config.history_url)
        try:
            held = [r for r in store.rows() if r["schedule"] == "health"]
        finally:
            store.close()
        assert [(r["status"], r["attempt"], r["report"]) for r in held] == [(WAITING_FEED, 0, None)]
        assert run_due(config, now=SLOT + dt.timedelta(seconds=30)) == []  # still waiting: nothing runs
        server.start()
        outcomes = run_due(config, now=SLOT + dt.timedelta(seconds=120))
        assert [(o.schedule, o.attempt, o.status) for o in outcomes] == [("capacity", 2, "ok"), ("health", 1, "ok")], \
            [o.line() for o in outcomes]
        capacity, health = outcomes
        assert _links(health.report, capacity.report)
        assert not _links(health.report, first.report)  # not the failed attempt's report
    finally:
        server.stop()
