"""The security-audit runbook through the runner, once: on the demo (its deliberate holes found, the verdict, the
record, the fixes)."""
from __future__ import annotations

import pytest

from opsbook.database.demo import PROBLEMS
from opsbook.run.runner import run_runbook

pytestmark = pytest.mark.slow


def findings(sidecar, check):
    return [f for f in sidecar["findings"] if f["check"] == check]


def test_demo_security_audit_finds_the_demo_holes(demo_database, tmp_path):
    result = run_runbook("security-audit", "demo", {}, output_dir=tmp_path)
    sc = result.sidecar
    assert result.exit_code == 0 and sc["status"] == "ok", sc["error"]
    for problem in (p for p in PROBLEMS if p.check.startswith("security.")):
        hits = [f for f in findings(sc, problem.check) if f["severity"] in ("warning", "critical")]
        text = " ".join(f"{f['title']} {' '.join(f['objects'])}" for f in hits)
        assert all(obj in text for obj in problem.objects), (problem, hits)
    tables = {f["objects"][0]: f["severity"] for f in findings(sc, "security.rls_disabled")}
    assert tables == {"public.metrics": "critical", "public.public_share_tokens": "critical"}
    assert findings(sc, "security.failed_logins")[0]["value"] == 60
    m = sc["metrics"]
    assert m["security_rls_disabled_findings"] == 2 and m["security_findings_critical"] >= 3
    assert m["security_anon_exposed_objects"] == 6
    html = result.html_path.read_text()
    verdict = html[html.index("Verdict"):html.index("What the Data API serves")]
    assert "anon (anyone with the public API key) can reach 6 object(s)" in verdict
    assert "public.public_share_tokens.token" in verdict and "storage bucket vehicle-photos" in verdict
    assert "ALTER TABLE public.metrics ENABLE ROW LEVEL SECURITY" in html
    assert "<script" not in verdict
