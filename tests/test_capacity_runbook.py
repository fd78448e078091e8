"""The capacity-planning runbook end to end through the runner: with a replayed history, and with none."""
from __future__ import annotations

import pytest

from opsbook.config.file import from_dict
from opsbook.run.runner import run_runbook
from test_history import DEMO_LIKE

pytestmark = pytest.mark.slow


def findings(result, check):
    return [f for f in result.sidecar["findings"] if f["check"] == check]


def test_forecast_over_replayed_history(db, tmp_path):
    from opsbook import history
    from opsbook.history.replay import replay_history

    db.execute(DEMO_LIKE)
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    base = {"targets": {"test": {"dsn": db.conninfo, "plan": "free", "compute": "nano"}}, "history": {"url": url}}
    replay_history(db.server, days=14, config=from_dict(base), target="test", dbname=db.name)
    store = history.open_store(from_dict(base))
    size = store.series("test", "database_size_bytes")["value"]
    per_day = (size.iloc[-1] - size.iloc[-4]) / 3
    store.close()
    # a limit 60 days of recent growth away (the replay's weekends and acceleration make the fit differ from that;
    # test_forecast.py proves the fit's accuracy on known series)
    base["targets"]["test"]["limits"] = {"database_size_bytes": float(size.iloc[-1] + 60 * per_day)}
    result = run_runbook("capacity-planning", "test", config=from_dict(base), output_dir=tmp_path / "reports",
                         params={"thresholds": {"storage.growth_forecast": {"warning_days": 365, "critical_days": 5}}})
    assert result.exit_code == 0, result.sidecar.get("error")
    m = result.sidecar["metrics"]
    assert m["database_growth_per_day_bytes"] > 0 and m["database_size_bytes"] == pytest.approx(size.iloc[-1], rel=0.05)
    assert 15 < m["days_until_disk_full"] < 250
    assert m["days_until_scaling_trigger"] < m["days_until_disk_full"]
    growth = findings(result, "storage.growth_forecast")
    assert growth[0]["severity"] == "warning" and "simulated clock" in growth[0]["detail"]
    assert findings(result, "storage.objects")[0]["severity"] in ("ok", "warning")
    assert "14 snapshots" in result.html_path.read_text() and "simulated clock" in result.html_path.read_text()
    checks = {f["check"] for f in result.sidecar["findings"]}
    assert {"storage.database_size", "connections.headroom", "tables.bloat", "vacuum.dead_tuples", "indexes.unused",
            "indexes.duplicate", "indexes.invalid", "indexes.unindexed_fk", "sequences.exhaustion", "auth.mau",
            "vacuum.stale_stats"} <= checks


def test_runs_without_history_and_says_how_to_start(db, tmp_path):
    db.execute("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)")
    config = from_dict({"targets": {"test": {"dsn": db.conninfo, "plan": "pro", "compute": "small"}},
                        "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"}})
    result = run_runbook("capacity-planning", "test", config=config, output_dir=tmp_path / "reports")
    assert result.exit_code == 0, result.sidecar.get("error")
    growth = findings(result, "storage.growth_forecast")
    assert growth[0]["severity"] == "info" and "opsbook snapshot --target test" in growth[0]["detail"]
    mau, objects = findings(result, "auth.mau"), findings(result, "storage.objects")
    assert mau and objects and all(f["skipped"] for f in mau + objects)
    assert result.sidecar["metrics"]["database_size_bytes"] > 0
    assert "days_until_disk_full" not in result.sidecar["metrics"]
    assert "No history for target" in result.html_path.read_text()
    assert not (tmp_path / "history.sqlite").exists()  # looking for history never creates a store
