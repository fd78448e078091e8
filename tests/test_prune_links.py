"""`opsbook reports prune` leaves no dead link: real monthly-health reports made month after month (the runner's
clock moved by faketime), the reports they link to, a prune, and then every local link of every kept page resolves."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import monthly_scenario
from report_checks import offline_sweep  # noqa: F401 - autouse: every page written here loads nothing remote

UTC = dt.timezone.utc
OPSBOOK = Path(sys.executable).parent / "opsbook"
MONTHLY_AT = ("2026-09-01 06:30:00", "2026-10-01 06:30:00", "2026-11-01 06:30:00", "2026-12-01 06:30:00")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.urls.append(value)


def dead_links(root: Path) -> list[str]:
    """Every local link (href, src) of every HTML page under root that points at no file."""
    dead = []
    for page in sorted(root.rglob("*.html")):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for url in parser.urls:
            u = urlsplit(url)
            if u.scheme or u.netloc or not u.path:
                continue  # remote (none in a report), mailto:, javascript:, or a fragment of the page itself
            if not (page.parent / unquote(u.path)).exists():
                dead.append(f"{page.relative_to(root)} -> {url}")
    return dead


def _month_of_reports(root: Path, y: int, m: int) -> None:
    """What a team's schedules leave in a month: cost and capacity at month end, a person's triage, a daily
    scheduled triage, the odd backup check and security audit (linked as the latest for months after)."""
    sc = monthly_scenario.sidecar
    sc(root, "cost-analysis", "test", dt.datetime(y, m, 27, 6, tzinfo=UTC), {"monthly_cost_usd": 20.0 + m},
       started_by="schedule")
    sc(root, "capacity-planning", "test", dt.datetime(y, m, 27, 6, 5, tzinfo=UTC), {}, started_by="schedule")
    sc(root, "incident-triage", "test", dt.datetime(y, m, 14, 3, 12, tzinfo=UTC), {"incident_priority": 2})
    for day in range(1, 29):
        sc(root, "incident-triage", "test", dt.datetime(y, m, day, 7, tzinfo=UTC), started_by="schedule")
    if m == 8:
        sc(root, "backup-verification", "test", dt.datetime(y, m, 3, 2, tzinfo=UTC), {"backup_age_hours": 2.0},
           started_by="schedule")
        sc(root, "security-audit", "test", dt.datetime(y, m, 4, 2, tzinfo=UTC), {}, started_by="lab")  # sidecar only


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (apt-get install faketime)")
def test_prune_leaves_no_dead_link(db, tmp_path, monkeypatch):
    monkeypatch.delenv("OPSBOOK_STARTED_BY", raising=False)
    root = tmp_path / "reports"
    cfg = tmp_path / "opsbook.toml"
    cfg.write_text(f"[targets.test]\ndsn = {json.dumps(db.conninfo)}\n"
                   f"[history]\nurl = \"sqlite:///{tmp_path}/history.sqlite\"\n[reports]\ndir = \"{root}\"\n")
    env = {**os.environ, "TZ": "UTC"}
    for when in MONTHLY_AT:  # each month's reports, then on the 1st the monthly report on them
        month = dt.date.fromisoformat(when[:10]) - dt.timedelta(days=1)
        _month_of_reports(root, month.year, month.month)
        out = subprocess.run(["faketime", when, str(OPSBOOK), "--config", str(cfg), "run", "monthly-health",
                              "--target", "test", "-p", f"month={month:%Y-%m}"],
                             capture_output=True, text=True, timeout=300, check=False, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
    monthly = sorted(root.glob("*/monthly-health--test--*.html"))
    assert [p.parent.name for p in monthly] == [w[:10] for w in MONTHLY_AT]
    assert dead_links(root) == []  # before the prune, every link works
    linked = {ln for p in monthly for ln in p.read_text().split('href="')[1:] if ln.startswith("../")}
    assert len(linked) >= 5  # capacity, cost, backups, security, incidents: what used to die

    r = subprocess.run([str(OPSBOOK), "--config", str(cfg), "reports", "prune", "--older-than", "30d"],
                       capture_output=True, text=True, timeout=120, check=False, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(root.glob("*/monthly-health--test--*.html")) == monthly  # the monthly reports stay
    assert dead_links(root) == []
    assert "kept 3 monthly reports" in r.stdout and "older reports that kept reports link to" in r.stdout, r.stdout
    routine = sorted(p.parent.name for p in root.glob("2026-*/incident-triage--test--070000Z.json"))
    # the routine triage runs no kept page links to are gone; each month's newest, which its report links, stays
    assert [d for d in routine if d < "2026-11-07"] == ["2026-08-28", "2026-09-28", "2026-10-28"], routine
    assert (root / "2026-08-04" / "security-audit--test--020000Z.json").exists()  # linked as a sidecar
