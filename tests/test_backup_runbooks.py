"""Both recovery runbooks through the runner, as `opsbook run` does: reports complete, findings and metrics in the
sidecar, artifacts beside the report, and the live database unchanged unless apply and confirm say so."""
from __future__ import annotations

import pytest

from opsbook.run.runner import run_runbook
from report_checks import offline_sweep  # noqa: F401 - autouse: checks every page this module writes
from test_backup_verification import checksums, scratch_databases, seed, take

pytestmark = pytest.mark.slow


@pytest.fixture
def src(db):
    seed(db)
    return db


def severities(result) -> dict[str, str]:
    out: dict[str, str] = {}
    rank = {"ok": 0, "info": 1, "warning": 2, "critical": 3}
    for f in result.sidecar["findings"]:
        if rank[f["severity"]] >= rank.get(out.get(f["check"], "ok"), 0):
            out[f["check"]] = f["severity"]
    return out


def test_backup_verification_runbook_verifies_a_fresh_dump(src, pg, tmp_path):
    before = checksums(src)
    r = run_runbook("backup-verification", "test", {"take_backup": True, "backup": str(tmp_path)},
                    config=src.config(), output_dir=tmp_path / "reports")
    assert r.exit_code == 0 and r.sidecar["status"] == "ok", r.sidecar["error"]
    assert set(severities(r).values()) == {"ok"}, r.sidecar["findings"]
    m = r.sidecar["metrics"]
    assert m["tables_verified"] == 4 and m["rows_verified"] == 5015 and m["restore_seconds"] > 0
    assert 0 <= m["backup_age_hours"] < 0.1 and m["backup_size_bytes"] > 0
    html = r.html_path.read_text()
    assert "Restore timeline" in html and "Rows per table" in html
    assert checksums(src) == before and not scratch_databases(pg)


def test_backup_verification_runbook_completes_its_report_on_a_damaged_dump(src, pg, tmp_path):
    path = take(src, tmp_path, "custom")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    r = run_runbook("backup-verification", "test", {"backup": str(path)}, config=src.config(),
                    output_dir=tmp_path / "reports", fail_on="critical")
    assert r.sidecar["status"] == "ok" and r.exit_code == 3
    s = severities(r)
    assert s["backup.integrity"] == "critical" and s["backup.restore"] == "critical"
    assert r.html_path.exists() and not scratch_databases(pg)


def test_table_recovery_runbook_dry_run_then_apply(src, tmp_path):
    backup = take(src, tmp_path, "custom")
    original = checksums(src)["leads"]
    src.execute("DELETE FROM leads WHERE id BETWEEN 500 AND 524")
    after_delete = checksums(src)
    params = {"table": "leads", "backup": str(backup), "apply": True}  # apply without confirm
    r = run_runbook("table-recovery", "test", params, config=src.config(), output_dir=tmp_path / "reports")
    assert r.sidecar["status"] == "ok", r.sidecar["error"]
    s = severities(r)
    assert s["recovery.missing_rows"] == "warning" and s["recovery.apply"] == "warning"
    assert r.sidecar["metrics"]["recovery_missing_rows"] == 25 and checksums(src) == after_delete
    stem = r.html_path.with_suffix("")
    assert stem.with_suffix(".missing.csv").exists() and stem.with_suffix(".missing.sql").exists()
    r = run_runbook("table-recovery", "test", {**params, "confirm": "leads"}, config=src.config(),
                    output_dir=tmp_path / "reports")
    assert severities(r)["recovery.apply"] == "ok" and r.sidecar["metrics"]["recovery_rows_inserted"] == 25
    assert checksums(src)["leads"] == original
