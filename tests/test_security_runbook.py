"""The security-audit runbook through the runner: on the demo (its deliberate holes found, the verdict, the record),
and as a login role with only CONNECT on a plain database (it completes; each check it cannot run says why)."""
from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from opsbook.config import from_dict
from opsbook.demo import PROBLEMS
from opsbook.runner import run_runbook

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


def test_connect_only_role_on_plain_postgres_completes_and_says_why(db, tmp_path):
    role = f"t_connect_{uuid.uuid4().hex[:8]}"
    db.execute(f'CREATE ROLE {role} LOGIN; REVOKE CONNECT ON DATABASE "{db.name}" FROM PUBLIC; '
               f'GRANT CONNECT ON DATABASE "{db.name}" TO {role}')
    other = db.connect()  # a session of another role: hidden from a role without pg_read_all_stats
    try:
        config = from_dict({"targets": {"test": {"dsn": db.server.conninfo(dbname=db.name, user=role)}}})
        result = run_runbook("security-audit", "test", {}, config=config, output_dir=tmp_path)
        sc = result.sidecar
        assert result.exit_code == 0 and sc["status"] == "ok", sc["error"]
        scope = findings(sc, "security.scope")
        assert len(scope) == 1 and "do not apply" in scope[0]["title"]
        skipped = {f["check"]: f["skipped"] for f in sc["findings"] if f.get("skipped")}
        assert "superusers" in skipped["security.password_expiry"]
        assert "pg_hba_file_rules" in skipped["security.hba"]
        assert "no auth.audit_log_entries" in skipped["security.failed_logins"]
        assert "log_path" in findings(sc, "security.failed_logins")[0]["remediation"]
        hidden = [f for f in findings(sc, "security.ssl") if "could not be checked" in f["title"]]
        assert hidden and hidden[0]["value"] >= 1
        for check in ("security.superusers", "security.public_schema_create", "security.default_privileges",
                      "security.rls_initplan", "security.function_search_path"):
            assert findings(sc, check) and not any(f.get("skipped") for f in findings(sc, check)), check
        assert json.loads(result.sidecar_path.read_text())["findings"] == sc["findings"]
    finally:
        other.close()
        db.execute(f'REVOKE CONNECT ON DATABASE "{db.name}" FROM {role}; DROP ROLE {role}')
