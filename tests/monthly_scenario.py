"""A team's reports folder over three months, for the monthly health report's tests: real snapshots of a real
database that grows, the earlier reports' sidecars (a daily scheduled triage, a person's triage, the cost
analyses), and the real monthly-health run over them."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

UTC = dt.timezone.utc
MONTHS = ((2026, 9), (2026, 10), (2026, 11))
BILLS = {(2026, 9): 25.0, (2026, 10): 31.0, (2026, 11): 61.5}


def sidecar(root: Path, runbook: str, target: str, when: dt.datetime, metrics: dict | None = None, findings=(),
            status: str = "ok", started_by: str | None = "cli") -> Path:
    """A report's three files as the runner names them (the HTML a plain page): returns the stem."""
    day = root / f"{when:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    stem = day / f"{runbook}--{target}--{when:%H%M%S}Z"
    data = {"runbook": runbook, "target": target, "status": status, "started_at": f"{when:%Y-%m-%dT%H:%M:%SZ}",
            "duration_s": 1.0, "parameters": {}, "findings": list(findings), "metrics": metrics or {}, "error": None}
    if started_by is not None:
        data["started_by"] = started_by
    if started_by == "lab":  # stepped through in JupyterLab: the sidecar is all it leaves in the reports folder
        data["interactive"] = True
    Path(f"{stem}.json").write_text(json.dumps(data))
    if started_by != "lab":
        Path(f"{stem}.html").write_text(f"<!DOCTYPE html><title>{runbook}</title><p>{runbook} on {target}</p>")
        Path(f"{stem}.ipynb").write_text("{}")
    return stem


def build(db, root: Path, history_url: str, *, target: str = "test"):
    """Snapshots from September to November (growing, a lot in November), and each month's reports: a cost
    analysis, a capacity plan, a daily scheduled incident-triage (9 in November, 3 before) and one a person ran."""
    from opsbook.config.file import from_dict
    from opsbook.history import open_store, take_snapshot

    config = from_dict({"targets": {target: {"dsn": db.conninfo, "plan": "pro", "compute": "small"}},
                        "history": {"url": history_url}, "reports": {"dir": str(root)}})
    db.execute("CREATE TABLE IF NOT EXISTS public.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
               "payload text)")
    store = open_store(config)
    try:
        for (y, m), rows in zip(MONTHS, (3_000, 6_000, 120_000)):
            for day in (2, 12, 22, 28):
                db.execute("INSERT INTO public.events (payload) SELECT repeat(md5(g::text), 3) "
                           f"FROM generate_series(1, {rows // 4}) g")
                db.execute("SELECT count(*) FROM public.events")  # reads: the cache counters move
                take_snapshot(config, target, store=store, as_of=dt.datetime(y, m, day, 3, tzinfo=UTC).timestamp())
    finally:
        store.close()
    for (y, m) in MONTHS:
        sidecar(root, "cost-analysis", target, dt.datetime(y, m, 27, 6, tzinfo=UTC),
                {"monthly_cost_usd": BILLS[(y, m)]}, started_by="schedule")
        sidecar(root, "capacity-planning", target, dt.datetime(y, m, 27, 6, 5, tzinfo=UTC),
                {"days_until_scaling_trigger": 400.0}, started_by="schedule")
        sidecar(root, "incident-triage", target, dt.datetime(y, m, 14, 3, 12, tzinfo=UTC), {"incident_priority": 2},
                started_by="cli")
        for day in range(1, 10 if (y, m) == (2026, 11) else 4):  # the daily scheduled triage: routine, no incident
            sidecar(root, "incident-triage", target, dt.datetime(y, m, day, 7, tzinfo=UTC), started_by="schedule")
    sidecar(root, "backup-verification", target, dt.datetime(2026, 11, 29, 2, tzinfo=UTC),
            {"backup_age_hours": 3.5, "restore_seconds": 41.0},
            [{"check": "backup.restore", "severity": "ok", "title": "restored"}], started_by="schedule")
    sidecar(root, "security-audit", target, dt.datetime(2026, 10, 20, 2, tzinfo=UTC), {},
            [{"check": "security.rls_disabled", "severity": "warning", "title": "1 table without RLS"}],
            started_by="lab")
    return config
