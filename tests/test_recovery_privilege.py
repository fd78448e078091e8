"""Recovery as a role that may not read the table's rows (pg_monitor only): the comparison with live cannot be
made, and the report says so as a warning, never as a healthy 'info'; rows fewer live than in the backup are a
finding of their own."""
from __future__ import annotations

import time

import pytest

from faults import drop_role, monitoring_role
from opsbook.config.file import from_dict
from opsbook.run.context import Runbook
from opsbook.core.findings import gaps
from opsbook.recovery.recover import TableRecovery
from opsbook.recovery.verify import BackupVerification
from test_backup_verification import seed, take

ROLE = "ob_recovery_monitor"


@pytest.fixture
def monitor(db):
    """The seeded database, a backup's worth of rows, and a pg_monitor-only role's config for it."""
    seed(db)
    dsn = monitoring_role(db.conninfo, ROLE, "pg_monitor")
    yield from_dict({"targets": {"test": {"dsn": dsn}}, "history": {"url": db.config().history_url}})
    drop_role(db.conninfo, ROLE)


class ServerLog:
    """The ERROR lines the server logs from now on (a privilege is asked of the catalogue, never tried)."""

    def __init__(self, server):
        self.path = server.log_file
        self.offset = self.path.stat().st_size

    def errors(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return [line for line in f.read().decode("utf-8", "replace").splitlines() if " ERROR:  " in line]


def wait_live_tuples(database, table: str, expected: int, timeout: float = 30) -> None:
    """Until the statistics the server keeps (pg_stat_user_tables) show the rows deleted (flushed at most once a
    second by the backend that deleted them)."""
    deadline = time.monotonic() + timeout
    while database.execute("SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = %s::regclass",
                           (table,))[0][0] != expected:
        assert time.monotonic() < deadline, f"n_live_tup of {table} never reached {expected}"
        time.sleep(0.05)


def test_table_recovery_without_select_is_a_warning_and_names_the_missing_rows(db, monitor, tmp_path, monkeypatch):
    """Failed before: every recovery.* finding after the restore was 'info' (skipped), the badge read 'info' while
    25 rows were missing."""
    monkeypatch.setenv("OPSBOOK_REPORT_STEM", str(tmp_path / "report"))
    backup = take(db, tmp_path, "custom")
    db.execute("DELETE FROM leads WHERE id BETWEEN 100 AND 124")
    wait_live_tuples(db, "public.leads", 2975)
    log = ServerLog(db.server)
    rb = Runbook("table-recovery", "test", config=monitor)
    rb.connect()
    TableRecovery(rb, table="leads", backup=str(backup)).run()
    rb.close()
    assert rb.worst().value == "warning", [(f.check, f.severity.value, f.title) for f in rb.findings]
    missing = [f for f in rb.findings if f.check == "recovery.missing_rows"]
    skipped = [f for f in missing if f.skipped]
    assert skipped and skipped[0].severity.value == "warning", [(f.severity.value, f.title) for f in missing]
    assert "SELECT" in skipped[0].title + skipped[0].detail and ROLE in skipped[0].title + skipped[0].detail
    counted = [f for f in missing if not f.skipped]
    assert counted and counted[0].severity.value == "warning" and counted[0].value == 25, \
        [(f.severity.value, f.title) for f in missing]
    assert gaps(rb.findings), "the verdict does not say the result is incomplete"
    assert not [f for f in rb.findings if f.severity.value == "ok" and f.check == "recovery.missing_rows"]
    # with a filter: it is not planned on a table the role may not read, and the estimate (of the whole table)
    # is left out; the warning stays
    rb = Runbook("table-recovery", "test", config=monitor)
    rb.connect()
    TableRecovery(rb, table="leads", backup=str(backup), filter="id < 1000").run()
    rb.close()
    assert [f.severity.value for f in rb.findings if f.check == "recovery.missing_rows"] == ["warning"]
    assert log.errors() == []


def test_backup_verification_without_select_is_a_warning_not_a_pass(db, monitor, tmp_path):
    """Failed before: tables that could not be counted were an 'info' beside an otherwise clean completeness."""
    backup = take(db, tmp_path, "custom")
    log = ServerLog(db.server)
    rb = Runbook("backup-verification", "test", config=monitor)
    rb.connect()
    BackupVerification(rb, backup=str(backup)).run()
    rb.close()
    assert log.errors() == []
    completeness = [f for f in rb.findings if f.check == "backup.completeness"]
    assert max(f.severity.rank for f in completeness) >= 2, [(f.severity.value, f.title) for f in completeness]
    assert not [f for f in completeness if f.severity.value == "ok"]
    assert gaps(rb.findings), "the verdict does not say the result is incomplete"


def test_row_level_security_the_role_does_not_bypass_is_a_warning_too(db, tmp_path):
    """A role that may read every row (pg_read_all_data) but not bypass row-level security: the policies are never run
    as opsbook, so the comparison is not made, and that is a warning naming the cause (before: 'info')."""
    seed(db)
    backup = take(db, tmp_path, "custom")
    wait_live_tuples(db, "public.leads", 3000)
    dsn = monitoring_role(db.conninfo, ROLE, "pg_read_all_data", "pg_monitor")
    try:
        rb = Runbook("table-recovery", "test",
                     config=from_dict({"targets": {"test": {"dsn": dsn}}, "history": {"url": db.config().history_url}}))
        rb.connect()
        TableRecovery(rb, table="leads", backup=str(backup)).run()
        rb.close()
    finally:
        drop_role(db.conninfo, ROLE)
    missing = [f for f in rb.findings if f.check == "recovery.missing_rows"]
    assert missing[0].severity.value == "warning" and "row-level security" in missing[0].title, missing
    assert "BYPASSRLS" in missing[0].remediation
    # nothing was deleted: the server's count says as many rows live as in the backup, and says that proves nothing
    assert [f.severity.value for f in missing[1:]] == ["info"] and "no proof" in missing[1].detail


def test_a_schema_closed_to_the_role_is_named_not_a_failed_restore(db, monitor, tmp_path):
    """Supabase's auth schema to a pg_monitor role: the table cannot even be looked up. Before: 'restore failed:
    permission denied for schema auth', and an ERROR line in the server's log."""
    db.execute("CREATE SCHEMA auth; CREATE TABLE auth.users (id int PRIMARY KEY); INSERT INTO auth.users VALUES (1)")
    backup = take(db, tmp_path, "custom")
    log = ServerLog(db.server)
    rb = Runbook("table-recovery", "test", config=monitor)
    rb.connect()
    r = TableRecovery(rb, table="auth.users", backup=str(backup)).run()
    rb.close()
    key = [f for f in rb.findings if f.check == "recovery.key"][0]
    assert key.severity.value == "critical" and "no USAGE on schema auth" in key.title, key
    assert "GRANT USAGE ON SCHEMA auth" in key.remediation and gaps(rb.findings)
    assert not [f for f in rb.findings if f.title.startswith("restore failed")] and r.result is None
    assert log.errors() == []


def test_a_dump_the_role_cannot_take_is_refused_from_the_catalogue_before_pg_dump_runs(db, monitor, tmp_path):
    """Failed before (the support matrix's pg_monitor cells): pg_dump ran as the pg_monitor-only role and wrote
    'permission denied for ...' into the server's log; now the catalogue says so first and names what blocks it."""
    log = ServerLog(db.server)
    rb = Runbook("backup-verification", "test", config=monitor)
    rb.connect()
    BackupVerification(rb, take_backup=True, backup=str(tmp_path / "dumps")).run()
    rb.close()
    (missing,) = [f for f in rb.findings if f.check == "backup.missing"]
    assert missing.severity.value == "critical" and "no backup was taken" in missing.title
    assert f"pg_dump as role {ROLE} would be refused" in missing.detail and "public.leads" in missing.detail
    assert not (tmp_path / "dumps").exists()
    assert log.errors() == []


def test_a_role_that_reads_everything_takes_its_dump(db, tmp_path):
    """The control: pg_read_all_data (PostgreSQL 14+) with BYPASSRLS (leads has row-level security), as Supabase's
    postgres has them, is what a complete dump needs, and the probe lets it pass."""
    seed(db)
    dsn = monitoring_role(db.conninfo, "ob_recovery_reader", "pg_read_all_data")
    db.execute('ALTER ROLE "ob_recovery_reader" BYPASSRLS')
    try:
        config = from_dict({"targets": {"test": {"dsn": dsn}}, "history": {"url": db.config().history_url}})
        log = ServerLog(db.server)
        rb = Runbook("backup-verification", "test", config=config)
        rb.connect()
        BackupVerification(rb, take_backup=True, backup=str(tmp_path)).run()
        rb.close()
        (missing,) = [f for f in rb.findings if f.check == "backup.missing"]
        assert missing.severity.value == "ok", (missing.title, missing.detail)
        assert log.errors() == []
    finally:
        drop_role(db.conninfo, "ob_recovery_reader")
