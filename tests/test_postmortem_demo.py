"""Acceptance: `opsbook run post-mortem --target demo` works out of the box and finds the recorded incident."""
from __future__ import annotations

import pytest

from opsbook.database.demo import RECORDED_PROBLEMS
from opsbook.run.runner import run_runbook

pytestmark = pytest.mark.slow


def test_demo_post_mortem_finds_the_recorded_incident(demo_database, tmp_path):
    result = run_runbook("post-mortem", "demo", {}, output_dir=tmp_path / "reports")
    assert result.exit_code == 0 and result.sidecar["status"] == "ok", result.sidecar["error"]
    findings = result.sidecar["findings"]
    for problem in RECORDED_PROBLEMS:
        hits = [f for f in findings if f["check"] == problem.check and f["severity"] in ("warning", "critical")
                and all(any(o.split(".")[-1] in f"{f['title']} {' '.join(f['objects'])}" for o in [obj])
                        for obj in problem.objects)]
        assert hits, (problem, [f for f in findings if f["check"] == problem.check])
    first = next(f for f in findings if f["check"] == "postmortem.root_cause")
    assert "report_job" in first["objects"] and "pm_branches" in first["title"]
    m = result.sidecar["metrics"]
    assert m["log_statement_timeout_count"] >= 8 and m["log_deadlock_count"] >= 1 and m["activity_samples"] >= 3
    assert result.html_path.with_suffix(".md").exists()
