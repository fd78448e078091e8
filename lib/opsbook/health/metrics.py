"""Read earlier runs from the reports folder: sidecars by runbook, target and time, and their recorded metrics.

Only the day folders of the asked interval are read, so a folder of years of reports costs what one month costs.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SIDECAR = re.compile(r"^(?P<runbook>.+?)--(?P<target>.+?)--\d{6}Z(-\d+)?\.json$")
UTC = dt.timezone.utc
# what the sidecar's `started_by` says (opsbook.report.record): a person asked for these runs; the scheduler and a
# fleet start routine ones. A sidecar older than the field says nothing: counted as a person's, as it always was.
BY_A_PERSON = ("cli", "lab", "service", None)


@dataclass
class Run:
    """One earlier run, from its sidecar."""

    runbook: str
    target: str
    started: dt.datetime
    sidecar: dict[str, Any]
    path: Path  # the sidecar JSON

    @property
    def html(self) -> Path:
        return self.path.with_suffix(".html")

    @property
    def metrics(self) -> dict[str, Any]:
        return self.sidecar.get("metrics") or {}

    @property
    def started_by(self) -> str | None:
        """cli, schedule, fleet, lab or service; None in sidecars written before opsbook recorded it."""
        value = self.sidecar.get("started_by")
        return value if isinstance(value, str) else None

    @property
    def by_a_person(self) -> bool:
        return self.started_by in BY_A_PERSON

    @property
    def status(self) -> str:
        return str(self.sidecar.get("status"))

    def counts(self) -> dict[str, int]:
        out = {"critical": 0, "warning": 0, "info": 0, "ok": 0}
        for f in self.sidecar.get("findings") or []:
            if isinstance(f, dict) and f.get("severity") in out:
                out[f["severity"]] += 1
        return out

    def link_from(self, page: Path) -> str:
        """The report's path relative to a page (another report), for a link that works offline."""
        return os.path.relpath(self.html, Path(page).parent).replace(os.sep, "/")


class ReportMetrics:
    """Earlier runs under a reports folder (reports/YYYY-MM-DD/<runbook>--<target>--HHMMSSZ.json)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def runs(self, *, runbook: str | None = None, target: str | None = None, start: dt.datetime | None = None,
             end: dt.datetime | None = None, status: str | None = None) -> list[Run]:
        """Runs in [start, end), oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        first = start.astimezone(UTC).date() if start else None  # day folders are UTC days
        last = end.astimezone(UTC).date() if end else None
        for day in sorted(p for p in self.root.iterdir() if p.is_dir() and DAY.match(p.name)):
            d = dt.date.fromisoformat(day.name)
            if (first and d < first) or (last and d > last):
                continue
            for path in day.glob("*.json"):
                m = SIDECAR.match(path.name)
                if not m or (runbook and m.group("runbook") != runbook) or (target and m.group("target") != target):
                    continue
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                    started = dt.datetime.strptime(data["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # half-written or foreign: never fail a report over another one
                if (start and started < start) or (end and started >= end):
                    continue
                if status and data.get("status") != status:
                    continue
                out.append(Run(data.get("runbook", m.group("runbook")), data.get("target", m.group("target")),
                               started, data, path))
        return sorted(out, key=lambda r: (r.started, r.path.name))

    def latest(self, runbook: str, target: str, *, before: dt.datetime | None = None,
               start: dt.datetime | None = None, ok_only: bool = True) -> Run | None:
        runs = self.runs(runbook=runbook, target=target, start=start, end=before,
                         status="ok" if ok_only else None)
        return runs[-1] if runs else None

    def metric(self, name: str, runbook: str, target: str, start: dt.datetime, end: dt.datetime) -> float | None:
        """The metric as the newest successful run in [start, end) recorded it."""
        for r in reversed(self.runs(runbook=runbook, target=target, start=start, end=end, status="ok")):
            v = r.metrics.get(name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        return None
