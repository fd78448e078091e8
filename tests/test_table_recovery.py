"""Table recovery on a real server with real dumps: delete rows, get them back; nothing is written without both
apply and confirm; a table without a primary key gets a request for a key, not a guess."""
from __future__ import annotations

import csv
import subprocess

import pytest

from opsbook.run.context import Runbook
from opsbook.recovery import tools
from opsbook.recovery.recover import TableRecovery
from test_backup_verification import checksums, scratch_databases, seed, take


@pytest.fixture
def src(db):
    seed(db)
    return db


def recover(database, **kw) -> tuple[Runbook, TableRecovery]:
    rb = Runbook("table-recovery", "test", config=database.config())
    rb.connect()
    r = TableRecovery(rb, **kw).run()
    rb.close()
    return rb, r


def finding(rb, check: str):
    found = [f for f in rb.findings if f.check == check]
    assert found, f"no {check} finding"
    return found[0]


def count(database, table: str) -> int:
    return database.execute(f"SELECT count(*) FROM {table}")[0][0]


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_deleted_rows_come_back_exactly(src, pg, tmp_path, fmt, monkeypatch):
    monkeypatch.setenv("OPSBOOK_REPORT_STEM", str(tmp_path / "report"))
    backup = take(src, tmp_path / "dumps", fmt)
    original = checksums(src)
    src.execute("DELETE FROM leads WHERE id BETWEEN 100 AND 149")  # interactions go with them (cascade)
    src.execute("UPDATE leads SET score = -1 WHERE id = 7")
    rb, r = recover(src, table="leads", backup=str(backup))
    assert finding(rb, "recovery.key").title.endswith("primary key (id)")
    missing = finding(rb, "recovery.missing_rows")
    assert missing.severity.value == "warning" and missing.value == 50
    assert finding(rb, "recovery.changed_rows").value == 1
    assert finding(rb, "recovery.apply").title.startswith("dry run") and count(src, "leads") == 2950
    assert list(r.missing_sample["id"][:3]) == [100, 101, 102]
    versions = r.changed_sample
    assert list(versions["version"]) == ["backup", "live"] and list(versions["score"].astype(float)) == [8.75, -1.0]
    assert list(versions["differs_in"]) == ["score", "score"]
    # the CSV: a header and one line per missing row
    with open(tmp_path / "report.missing.csv", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0][:3] == ["id", "dealership_id", "full_name"] and len(lines) == 51
    # the SQL script, run as the report says, brings the rows back byte for byte
    sql = (tmp_path / "report.missing.sql").read_text()
    assert sql.count("ON CONFLICT DO NOTHING;") == 50 and "BEGIN;" in sql and "DELETE" not in sql
    client = tools.choose(180000)
    out = subprocess.run([client.path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", src.conninfo, "-f",
                          str(tmp_path / "report.missing.sql")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    src.execute("UPDATE leads SET score = 8.75 WHERE id = 7")  # undo the change by hand, as the report advises
    assert checksums(src)["leads"] == original["leads"]
    assert r.result is not None and not [n for n in scratch_databases(pg) if n.startswith("opsbook_recover_")]


def test_apply_with_confirm_inserts_in_one_transaction_and_never_touches_live_rows(src, tmp_path):
    backup = take(src, tmp_path, "custom")
    original = checksums(src)["leads"]
    src.execute("DELETE FROM leads WHERE id > 2990")
    src.execute("UPDATE leads SET full_name = 'changed live' WHERE id = 1")
    src.execute("INSERT INTO leads (dealership_id, full_name) VALUES (1, 'newer than the backup')")
    rb, r = recover(src, table="public.leads", backup=str(backup), apply=True, confirm="leads")
    applied = finding(rb, "recovery.apply")
    assert applied.severity.value == "ok" and applied.value == 10, applied.detail
    assert count(src, "leads") == 3001
    assert src.execute("SELECT full_name FROM leads WHERE id = 1")[0][0] == "changed live"  # not overwritten
    assert src.execute("SELECT count(*) FROM leads WHERE full_name = 'newer than the backup'")[0][0] == 1
    metrics = dict(zip(*r.record().T.values))
    assert metrics["recovery_rows_inserted"] == 10
    src.execute("DELETE FROM leads WHERE full_name = 'newer than the backup'")
    src.execute("UPDATE leads SET full_name = 'lead 1' WHERE id = 1")
    assert checksums(src)["leads"] == original
    rb, _ = recover(src, table="leads", backup=str(backup))  # run again: nothing missing
    assert finding(rb, "recovery.missing_rows").value == 0


@pytest.mark.parametrize("confirm", ["", "leadz", "interactions"])
def test_apply_without_the_right_confirm_changes_nothing(src, tmp_path, confirm):
    backup = take(src, tmp_path, "custom")
    src.execute("DELETE FROM leads WHERE id <= 20")
    before = checksums(src)
    rb, _ = recover(src, table="leads", backup=str(backup), apply=True, confirm=confirm)
    assert finding(rb, "recovery.apply").severity.value == "warning"
    assert finding(rb, "recovery.missing_rows").value == 20
    assert checksums(src) == before


def test_a_table_without_a_primary_key_asks_for_a_key(src, pg, tmp_path):
    backup = take(src, tmp_path, "custom")
    src.execute("DELETE FROM tags_log WHERE tag IN ('t1', 't2')")
    rb, r = recover(src, table="tags_log", backup=str(backup))
    key = finding(rb, "recovery.key")
    assert key.severity.value == "critical" and "no primary key" in key.title and "key=" in key.remediation
    assert r.result is None and r.diff is None  # nothing restored, nothing guessed
    assert finding(rb, "recovery.missing_rows").skipped
    rb, r = recover(src, table="tags_log", backup=str(backup), key="tag")
    assert finding(rb, "recovery.missing_rows").value == 2
    rb, _ = recover(src, table="tags_log", backup=str(backup), key="nope")
    assert finding(rb, "recovery.key").severity.value == "critical"


def test_a_key_that_is_not_unique_writes_nothing(src, tmp_path):
    src.execute("INSERT INTO tags_log VALUES ('t1', now())")  # 't1' twice
    backup = take(src, tmp_path, "custom")
    src.execute("DELETE FROM tags_log WHERE tag = 't3'")
    rb, _ = recover(src, table="tags_log", backup=str(backup), key="tag", apply=True, confirm="tags_log")
    assert finding(rb, "recovery.missing_rows").severity.value == "critical"
    assert count(src, "tags_log") == 10


def test_filter_limits_the_comparison_and_a_missing_table_is_told(src, tmp_path):
    backup = take(src, tmp_path, "custom")
    src.execute("DELETE FROM leads WHERE id IN (10, 2000)")
    rb, _ = recover(src, table="leads", backup=str(backup), filter="id < 1000")
    assert finding(rb, "recovery.missing_rows").value == 1
    rb, _ = recover(src, table="leads", backup=str(backup), filter="true; DROP TABLE leads")
    assert finding(rb, "recovery.key").severity.value == "critical" and count(src, "leads") == 2998
    rb, _ = recover(src, table="no_such_table", backup=str(backup))
    assert "does not exist" in finding(rb, "recovery.key").title


def test_live_read_failures_are_not_restore_failures_and_bad_input_is_named(src, pg, tmp_path):
    """Issue 10: a lock timeout while reading live, a bad key, a bad filter and an unreachable database each say
    what they are; none is 'restore failed', none claims the scratch was not dropped, none says 'no primary key'
    or 'does not exist'."""
    backup = take(src, tmp_path, "custom")
    src.execute("DELETE FROM leads WHERE id <= 5")
    holder = src.connect(autocommit=False)
    holder.execute("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE")  # live rows cannot be read: lock_timeout
    try:
        rb, r = recover(src, table="leads", backup=str(backup))
    finally:
        holder.rollback()
    restore_findings = [f for f in rb.findings if f.check == "backup.restore"]
    assert restore_findings and not [f for f in restore_findings if f.title.startswith("restore failed")]
    assert not [f for f in restore_findings if "NOT dropped" in (f.detail or "")]
    missing = finding(rb, "recovery.missing_rows")
    assert missing.skipped and "comparing the backup's rows with live failed" in missing.title
    assert "lock" in missing.title.lower()
    assert not [n for n in scratch_databases(pg) if n.startswith("opsbook_recover_")]

    rb, _ = recover(src, table="leads", backup=str(backup), key="nope")
    key = finding(rb, "recovery.key")
    assert key.severity.value == "critical" and "no primary key" not in key.title and "nope" in key.title
    rb, _ = recover(src, table="leads", backup=str(backup), filter="no_such_column > 1")
    key = finding(rb, "recovery.key")
    assert "filter does not fit" in key.title and "no_such_column" in key.title

    config = src.config()
    config.targets["test"] = type(config.targets["test"])("test", dsn="host=127.0.0.1 port=1 user=x dbname=x")
    rb = Runbook("table-recovery", "test", config=config)
    rb.connect()
    TableRecovery(rb, table="leads", backup=str(backup)).run()
    rb.close()
    key = finding(rb, "recovery.key")
    assert "could not be reached" in key.title and "does not exist" not in key.title


def test_a_hostile_plain_backup_is_refused_before_anything_of_it_runs(src, tmp_path):
    marker = tmp_path / "ran"
    path = take(src, tmp_path, "plain")
    text = path.read_text().replace("-- PostgreSQL database dump complete",
                                    f"\\! touch {marker}\n-- PostgreSQL database dump complete")
    path.write_text(text)
    rb, r = recover(src, table="leads", backup=str(path))
    refused = finding(rb, "backup.restore")
    assert refused.severity.value == "critical" and "refused" in refused.title and "\\!" in refused.detail
    assert r.result is None and not marker.exists()
