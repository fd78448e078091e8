"""`opsbook watch`: samples of real blocking trees, gaps when the target goes away, SIGTERM, pruning."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from faults import Faults, blocking_chain
from opsbook.cli.main import main
from opsbook.history import open_store
from opsbook.incident.watch import Watcher, prune_samples, read_samples, take_sample
from opsbook.database.session import connect


def _cfg(db, tmp_path, name="h.sqlite"):
    from opsbook.config.file import from_dict

    return from_dict({"targets": {"test": {"dsn": db.conninfo}},
                      "history": {"url": f"sqlite:///{tmp_path / name}"}})


def test_sample_names_each_blocking_root_with_its_tree_statement_and_relation(db):
    with Faults(db.conninfo) as f:
        chain = blocking_chain(f)
        with connect(db.config().target("test")) as session:
            row = take_sample(session)
    roots = row["detail"]["roots"]
    assert [r["pid"] for r in roots] == [chain["root"]]
    root = roots[0]
    assert root["blocked"] == 5  # b, c, d, e, f: directly or through others
    assert sorted(root["direct"]) == sorted([chain["b"], chain["f"]])
    assert (root["application"], root["state"], root["relation"]) == \
        ("fault-root", "idle in transaction", "public.chain_a")
    assert root["statement"] == "UPDATE chain_a SET v = v + 1 WHERE id = 1"
    assert root["lock_type"] in ("transactionid", "relation")
    assert row["waiting"] == 5 and row["blocked_max_tree"] == 5
    assert row["idle_in_transaction"] >= 1 and row["detail"]["by_app"]["fault-root"] == 1
    assert row["longest_xact_s"] > 0 and row["detail"]["longest"]["pid"] == chain["root"]
    assert row["xact_commit"] > 0 and row["wal_bytes"] > 0


def test_root_statement_is_redacted(db):
    role = f"pw_{db.name}"
    db.execute(f'CREATE ROLE "{role}"')
    db.execute("CREATE TABLE pw_t (id int)")
    try:
        with Faults(db.conninfo) as f:
            holder = f.session("pw", autocommit=False)
            holder.execute("LOCK TABLE pw_t IN ACCESS EXCLUSIVE MODE")
            holder.execute(f"""ALTER ROLE "{role}" PASSWORD 'hunter2'""")  # its last statement
            waiter = f.session("w")
            f.in_thread(waiter, "SELECT * FROM pw_t")
            f.wait_lock(waiter.info.backend_pid)
            with connect(db.config().target("test")) as session:
                row = take_sample(session)
    finally:
        db.execute(f'DROP ROLE IF EXISTS "{role}"')
    (root,) = row["detail"]["roots"]
    assert "hunter2" not in repr(row)
    assert root["statement"].startswith(f'ALTER ROLE "{role}" PASSWORD') and root["relation"] == "public.pw_t"


def test_gap_recorded_when_the_target_goes_away_and_sampling_goes_on(db, tmp_path):
    config = _cfg(db, tmp_path)
    store = open_store(config)
    lines: list[str] = []
    w = Watcher(config, ["test"], store=store, every_s=0.1, echo=lines.append)
    from opsbook.incident.watch.store import ensure_table

    ensure_table(store.engine)
    assert w.tick("test")["status"] == "ok"
    with psycopg.connect(db.server.conninfo(), autocommit=True) as admin:
        admin.execute(f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{db.name}'")
        admin.execute(f'ALTER DATABASE "{db.name}" RENAME TO "{db.name}_away"')  # the target is gone
        assert w.tick("test") is None and w.tick("test") is None  # two failed ticks: one gap row
        admin.execute(f'ALTER DATABASE "{db.name}_away" RENAME TO "{db.name}"')
    assert w.tick("test")["status"] == "ok"
    rows = read_samples(store.engine, "test", 0, time.time() + 1)
    assert [r["status"] for r in rows] == ["ok", "unreachable", "ok"]
    assert db.name in rows[1]["detail"]["error"] and "does not exist" in rows[1]["detail"]["error"]
    assert any("unreachable" in x for x in lines) and any("back after" in x for x in lines)
    assert w.counts == {"samples": 2, "gaps": 1}
    store.close()


def test_sigterm_flushes_and_exits_0(db, tmp_path):
    (tmp_path / "opsbook.toml").write_text(
        f'[targets.test]\ndsn = "{db.conninfo}"\n[history]\nurl = "sqlite:///{tmp_path / "h.sqlite"}"\n')
    proc = subprocess.Popen([str(Path(sys.executable).parent / "opsbook"), "--config", str(tmp_path / "opsbook.toml"),
                             "watch", "--target", "test", "--every", "0.2s"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        store = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (tmp_path / "h.sqlite").exists():
                store = open_store(_cfg(db, tmp_path))
                if len(read_samples(store.engine, "test", 0, time.time() + 1)) >= 2:
                    break
                store.close()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    n = len(read_samples(store.engine, "test", 0, time.time() + 1))
    store.close()
    assert n >= 2 and f"stopped: {n} sample(s), 0 gap(s)" in out


def test_watch_for_and_bad_input(db, tmp_path):
    (tmp_path / "opsbook.toml").write_text(
        f'[targets.test]\ndsn = "{db.conninfo}"\n[history]\nurl = "sqlite:///{tmp_path / "h.sqlite"}"\n')
    runner = CliRunner()
    cfg = ["--config", str(tmp_path / "opsbook.toml")]
    r = runner.invoke(main, [*cfg, "watch", "--target", "test", "--every", "0.1s", "--for", "0.35s"])
    assert r.exit_code == 0, r.output
    assert "stopped: 4 sample(s), 0 gap(s)" in r.output
    for args, msg in ((["--every", "soon"], "not understood"), (["--target", "nope"], "nope"),
                      (["--all", "--target", "test"], "not both")):
        r = runner.invoke(main, [*cfg, "watch", *args])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, r.output


def test_history_prune_prunes_samples_too(db, tmp_path):
    (tmp_path / "opsbook.toml").write_text(
        f'[targets.test]\ndsn = "{db.conninfo}"\n[history]\nurl = "sqlite:///{tmp_path / "h.sqlite"}"\n')
    config = _cfg(db, tmp_path)
    store = open_store(config)
    from opsbook.incident.watch.store import ensure_table, write_sample

    ensure_table(store.engine)
    now = time.time()
    for age_d in (40, 20, 1):
        write_sample(store.engine, {"target": "test", "ts": now - age_d * 86400, "status": "ok", "detail": {}})
    assert prune_samples(store.engine, 30 * 86400, target="other") == 0
    store.close()
    r = CliRunner().invoke(main, ["--config", str(tmp_path / "opsbook.toml"), "history", "prune",
                                  "--older-than", "10d"])
    assert r.exit_code == 0, r.output
    assert "2 activity sample(s)" in r.output
    store = open_store(config)
    assert len(read_samples(store.engine, "test", 0, now + 1)) == 1
    store.close()
