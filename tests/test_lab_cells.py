"""Any cell of a runbook can be re-run in JupyterLab after the last one, which closed the session."""
from __future__ import annotations

import psycopg

from lab_kernel import config_file, errors, lab_kernel, lock_holder, text


def backends(db) -> int:
    with psycopg.connect(db.server.conninfo(), autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                         (db.name,)).fetchone()[0]


def test_remediation_alone_after_run_all_ends_the_blocker(db, tmp_path, monkeypatch):
    with lab_kernel("incident-triage", config_file(tmp_path, db), monkeypatch) as lab:
        lab.set_params(target="test")
        for i in lab.code[1:]:
            assert not errors(lab.run(i)), (i, lab.nb.cells[i].source)
        assert backends(db) == 0  # the last cell closed the session for real

        # an idle transaction holding a lock appears; the engineer types its pid and confirm, runs the
        # parameters cell, then only the Remediation cell (the natural way, not Run All)
        with lock_holder(db) as pid:
            lab.set_params(target="test", terminate_pids=[pid], confirm=True)
            out = lab.run(lab.index_of("remediate.apply("))
            assert not errors(out), errors(out)
            assert f"pg_terminate_backend({pid})" in text(out) and "signal sent" in text(out)
            assert backends(db) == 1  # the blocker is gone; opsbook's own reopened session is the one left


def test_every_cell_again_after_the_last_and_connected_only_when_it_is(db, tmp_path, monkeypatch):
    with lab_kernel("incident-triage", config_file(tmp_path, db), monkeypatch) as lab:
        lab.set_params(target="test")
        for i in lab.code[1:]:
            assert not errors(lab.run(i)), (i, lab.nb.cells[i].source)
        probe = lab.source('print(rb.connected, rb.db.scalar("SELECT 1"))')  # connected: a session that answers
        assert not errors(probe) and text(probe).split() == ["True", "1"]

        lab.set_params(target="test", window_minutes=30)
        for i in lab.code[2:]:  # every cell again, in order, after the last one closed the session once more
            assert not errors(lab.run(i)), (i, lab.nb.cells[i].source)
        assert backends(db) == 0

        allow(db, False)  # the database refuses connections after the last cell: `connected` says so, no crash
        try:
            probe = lab.source("print(rb.connected)")
            assert not errors(probe) and text(probe).split() == ["False"]
        finally:
            allow(db, True)


def allow(db, on: bool) -> None:
    with psycopg.connect(db.server.conninfo(), autocommit=True) as c:
        c.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS {str(on).lower()}')
