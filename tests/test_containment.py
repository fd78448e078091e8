"""Containment (issue 9): a backup under test, a hostile database or a secret can never harm anything. Each case
runs against real servers: pg_dump's own -c -C scripts, hostile scripts, an escalation through a CHECK constraint,
the children's real command lines, file modes, throwaway clusters killed and swept."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from conftest import ROOT, unprivileged_home
from processes import descends_from
from opsbook.run.context import Runbook
from opsbook.recovery import dump, tools
from opsbook.recovery.script import ScriptGuard
from opsbook.recovery.verify import BackupVerification
from opsbook.database.sandbox.liveness import scratch_root
from test_backup_verification import by_check, checksums, seed, take, worst

TINY = "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, 'n' || g FROM generate_series(1, 20) g;"
HEADER = "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 18.6\n-- Dumped by pg_dump version 18.6\n\n"
TRAILER = "\n--\n-- PostgreSQL database dump complete\n--\n\n"


def run_verification(database, config=None, **kw):
    rb = Runbook("backup-verification", "test", config=config or database.config())
    rb.connect()
    v = BackupVerification(rb, **kw).run()
    rb.close()
    return rb, v


def databases(server) -> set[str]:
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        return {r[0] for r in c.execute("SELECT datname FROM pg_database")}


def roles(server) -> set[str]:
    with psycopg.connect(server.conninfo(), autocommit=True) as c:
        return {r[0] for r in c.execute("SELECT rolname FROM pg_roles")}


def clusters_left() -> list[str]:
    root = scratch_root()
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def _pg_dump(database, path: Path, *args: str) -> Path:
    client = tools.choose(None)
    subprocess.run([client.path("pg_dump"), *args, "-f", str(path), database.conninfo], check=True,
                   capture_output=True)
    return path


# ------------------------------------------------------------------------------------------ 1. pg_dump -c -C
def test_a_clean_create_dump_never_touches_the_server_holding_the_same_database(db, pg, tmp_path):
    """The script's DROP DATABASE / CREATE DATABASE / \\connect name the live database itself: the restore must
    go into the throwaway cluster, and the live server keep its databases byte for byte."""
    seed(db)
    path = _pg_dump(db, tmp_path / "cc.sql", "-c", "-C")
    assert f"DROP DATABASE {db.name}" in path.read_text()
    before, dbs = checksums(db), databases(pg)
    rb, v = run_verification(db, backup=str(path))
    assert worst(rb, "backup.integrity") == "ok" and worst(rb, "backup.restore") == "ok", \
        [(f.check, f.title, f.detail) for f in rb.findings]
    assert worst(rb, "backup.completeness") == "ok"
    assert checksums(db) == before and databases(pg) == dbs
    detail = by_check(rb)["backup.restore"][0].detail
    assert "throwaway PostgreSQL cluster" in detail and "not a superuser" in detail and "DATABASE" in detail
    assert v.scratch.kind == "cluster" and v.scratch.dropped and not clusters_left()


def test_a_clean_create_dump_on_a_scratch_target_goes_into_a_fresh_database_only(db, pg, pg15, tmp_path):
    seed(db)
    path = _pg_dump(db, tmp_path / "cc.sql", "-c", "-C")
    with psycopg.connect(pg15.conninfo(), autocommit=True) as c:  # the same name, other content, on the target
        c.execute(f'CREATE DATABASE "{db.name}"')
    try:
        with psycopg.connect(pg15.conninfo(dbname=db.name), autocommit=True) as c:
            c.execute(TINY)
            same = c.execute("SELECT md5(string_agg(n::text, '|' ORDER BY id)) FROM notes n").fetchone()[0]
        config = db.config()
        config.targets["spare"] = type(config.targets["test"])("spare", dsn=pg15.conninfo(), extra={"scratch": True})
        dbs = databases(pg15)
        rb, v = run_verification(db, config=config, backup=str(path), restore_target="spare")
        assert worst(rb, "backup.restore") in ("ok", "warning") and v.scratch.kind == "database"
        assert (v.completeness.tables["status"] == "same").all()
        assert databases(pg15) == dbs
        with psycopg.connect(pg15.conninfo(dbname=db.name), autocommit=True) as c:
            assert c.execute("SELECT md5(string_agg(n::text, '|' ORDER BY id)) FROM notes n").fetchone()[0] == same
            assert c.execute("SELECT to_regclass('public.leads')").fetchone()[0] is None
    finally:
        with psycopg.connect(pg15.conninfo(), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


def test_an_unmarked_restore_target_is_refused(db, pg15, tmp_path):
    db.execute(TINY)
    take(db, tmp_path, "custom")
    config = db.config()
    config.targets["other"] = type(config.targets["test"])("other", dsn=pg15.conninfo())
    dbs = databases(pg15)
    rb, _ = run_verification(db, config=config, backup=str(tmp_path), restore_target="other")
    assert "not marked `scratch = true`" in by_check(rb)["backup.restore"][0].title
    assert databases(pg15) == dbs


# ------------------------------------------------------------------------------------------ 2. hostile scripts
def _hostile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hostile.sql"
    path.write_text(HEADER + "SET standard_conforming_strings = on;\n" + TINY + "\n" + body + TRAILER)
    return path


def test_a_hostile_script_is_refused_by_line_and_nothing_of_it_runs(db, pg, tmp_path):
    marker, program_marker = tmp_path / "shell-ran", tmp_path / "program-ran"
    role = f"evil_{uuid.uuid4().hex[:6]}"
    path = _hostile(tmp_path, f"CREATE ROLE {role} SUPERUSER;\n"
                              f"COPY (SELECT 1) TO PROGRAM 'touch {program_marker}';\n"
                              f"SELECT 1; \\! touch {marker}\n")
    db.execute(TINY)
    rb, v = run_verification(db, backup=str(path))
    integrity = by_check(rb)["backup.integrity"][0]
    assert integrity.severity.value == "critical" and "refused" in integrity.title
    assert "line 12: `\\! touch" in integrity.detail
    assert [bool(f.skipped) for f in by_check(rb)["backup.restore"]] == [True]
    assert v.result is None
    assert not marker.exists() and not program_marker.exists()
    assert role not in roles(pg) and not clusters_left()


def test_the_feed_to_psql_refuses_too_even_when_the_scan_was_passed(db, tmp_path):
    """The guard judges the very bytes psql gets: a script changed after the scan still cannot run a command."""
    from opsbook.recovery import archive, restore
    from opsbook.recovery.scratch import open_scratch, prepare

    marker = tmp_path / "ran"
    path = _hostile(tmp_path, "SELECT 'a' \\g |touch " + str(marker) + "\n")
    backup = archive.describe(path)
    client = tools.choose(None)
    with open_scratch(db.config(), None, None, "verify") as scratch:
        prepare(scratch, backup, client)
        result = restore.restore(backup, client, scratch.conninfo, scratch=scratch)
    assert result.refused and "\\g" in result.refused and not result.completed
    assert not marker.exists() and scratch.dropped


@pytest.mark.parametrize("line", [
    "\\! id", "SELECT 1 \\g |id", "\\o |cat", "\\copy notes to program 'id'", "\\setenv PAGER id", "\\i /etc/passwd",
    "\\ir x.sql", "\\lo_import /etc/passwd", "SELECT 'x' \\gexec", "\\set x 1", "\\\\", "\\gset", "\\c other",
    "SELECT 1; \\connect other", "SET standard_conforming_strings = off;", "SET SESSION AUTHORIZATION postgres;",
    "CREATE DATABASE x\n", "COPY notes FROM stdin; SELECT 1;"])
def test_every_psql_escape_outside_copy_data_is_refused(line):
    guard = ScriptGuard()
    lines = [b"\\connect db\n"] if line.startswith("\\c ") else []
    refusals = [d.refusal for raw in lines + [(line + "\n").encode()] for d in [guard.judge(raw)] if d.refusal]
    refusals += [d.refusal for d in [guard.judge(b"CREATE TABLE t ();\n")] if d.refusal] if line.endswith("\n") else []
    assert refusals, line


def test_what_pg_dump_writes_is_never_refused():
    text = ("\\restrict abc\nSET standard_conforming_strings = on;\n"
            "CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $_$\nBEGIN\n\\! not a command here\n"
            "RETURN E'\\\\! still a string'; END $_$;\n"
            "COMMENT ON TABLE t IS 'it''s \\! quoted';\n/* a comment \\! \n still */ SELECT 1;\n"
            "COPY public.t (a, b) FROM stdin;\n\\! data\n\\\\N\t\\x\n\\.\n"
            "SELECT $$\n\\o inside dollars\n$$;\nSELECT \"a\\b\" FROM x;\n\\unrestrict abc\n")
    guard = ScriptGuard()
    assert [d.refusal for raw in text.encode().splitlines(keepends=True) for d in [guard.judge(raw)]
            if d.refusal] == []


# ------------------------------------------------------------------------------------------ 3. escalation
ESCALATION = """
CREATE FUNCTION public.guard(v int) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  IF current_database() LIKE 'opsbook%%' AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'CREATE ROLE {role} SUPERUSER LOGIN';
    EXECUTE $c$COPY (SELECT 1) TO PROGRAM 'touch {marker}'$c$;
  END IF;
  RETURN true;
END $f$;
CREATE TABLE guarded (id int PRIMARY KEY, v int CHECK (public.guard(v)));
INSERT INTO guarded SELECT g, g FROM generate_series(1, 5) g;
"""


@pytest.mark.parametrize("fmt", ["custom", "plain"])
def test_a_check_constraint_cannot_run_code_as_superuser_during_the_restore(db, pg, tmp_path, fmt):
    marker = Path("/tmp") / f"opsbook-escalated-{uuid.uuid4().hex[:8]}"  # where the server account may write
    role = f"esc_{uuid.uuid4().hex[:6]}"
    db.execute(ESCALATION.replace("%%", "%").format(role=role, marker=marker))
    take(db, tmp_path, fmt)
    rb, v = run_verification(db, backup=str(tmp_path))
    assert not marker.exists() and role not in roles(pg)
    assert v.completeness is not None and (v.completeness.tables["status"] == "same").all()
    detail = by_check(rb)["backup.restore"][0].detail
    assert "role opsbook_restore (not a superuser)" in detail


# ------------------------------------------------------------------------------------------ 4. secrets
def test_sslpassword_and_password_never_reach_a_childs_command_line(db, tmp_path, monkeypatch):
    db.execute(TINY)
    secret, key_secret = f"pw-{uuid.uuid4().hex}", f"ssl-{uuid.uuid4().hex}"
    monkeypatch.setenv("LIVE_DSN", f"{db.conninfo} password={secret} sslpassword={key_secret} sslmode=disable")
    config = db.config()
    config.targets["test"] = type(config.targets["test"])("test", dsn_env="LIVE_DSN")
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == os.getpid():
                    continue
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    env = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if ("pg_dump" in cmd or "pg_restore" in cmd or "psql" in cmd) and descends_from(int(pid)):
                    seen.append(cmd + "\n" + env)
            time.sleep(0.002)

    holder = db.connect(autocommit=False)
    holder.execute("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")  # pg_dump waits a moment: it is seen running
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    threading.Timer(1.5, holder.rollback).start()
    try:
        rb, _ = run_verification(db, config=config, take_backup=True, backup=str(tmp_path / "dumps"))
    finally:
        stop.set()
        watcher.join()
    assert worst(rb, "backup.restore") == "ok", [(f.title, f.detail) for f in rb.findings]
    dumps = [s for s in seen if "pg_dump" in s.split("\n")[0]]
    assert dumps, "pg_dump was never seen running"
    assert not [s for s in seen if secret in s or key_secret in s]


# ------------------------------------------------------------------------------------------ 6. signals, orphans
SLOW = "SELECT pg_sleep(30);\n"
CHILD = """
import json, sys
sys.path.insert(0, {lib!r})
from opsbook.config.file import from_dict
from opsbook.run.context import Runbook
from opsbook.recovery.verify import BackupVerification
rb = Runbook("backup-verification", "test", config=from_dict({{"targets": {{"test": {{"dsn": {dsn!r}}}}}}}))
rb.connect()
print("started", flush=True)
try:
    BackupVerification(rb, backup={backup!r}).run()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise
f = [x for x in rb.findings if x.check == "backup.restore"]
print(json.dumps([[x.severity.value, x.title, x.detail] for x in f]), flush=True)
"""


LIGHT = """
import sys
sys.path.insert(0, {lib!r})
from opsbook.recovery import archive, restore, tools
from opsbook.recovery.scratch import open_scratch, prepare
backup = archive.describe({backup!r})
client = tools.choose(None)
with open_scratch(None, None, None, "verify") as scratch:
    prepare(scratch, backup, client)
    restore.restore(backup, client, scratch.conninfo, scratch=scratch)
"""


def _child(db, backup: Path, light: bool = False) -> subprocess.Popen:
    """A process that owns a throwaway cluster: a whole verification, or (light) just the restore step."""
    code = (LIGHT if light else CHILD).format(lib=str(ROOT / "lib"), dsn=db.conninfo, backup=str(backup))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ})


def _wait_for_restore(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The child's throwaway cluster, once psql is feeding it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"psql" in cmd and b"opsbook-s-" in cmd and descends_from(int(pid), proc.pid):
                    return clusters_left()[0]
        time.sleep(0.05)
    raise AssertionError("the restore never started")


def _postgres_of(name: str) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_restore_leaves_no_scratch(db, tmp_path, sig):
    db.execute(TINY)
    path = _hostile(tmp_path, SLOW)
    proc = _child(db, path, light=True)
    name = _wait_for_restore(proc)
    proc.send_signal(getattr(__import__("signal"), sig))
    proc.wait(timeout=60)
    assert proc.returncode != 0
    deadline = time.time() + 10
    while _postgres_of(name) and time.time() < deadline:
        time.sleep(0.1)
    assert not _postgres_of(name) and name not in clusters_left()


def test_kill_9_of_the_owner_leaves_an_orphan_the_next_run_drops_and_reports(db, tmp_path):
    db.execute(TINY)
    proc = _child(db, _hostile(tmp_path, SLOW), light=True)
    name = _wait_for_restore(proc)
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while _postgres_of(name) and time.time() < deadline:  # the server dies with its owner (parent-death signal)
        time.sleep(0.1)
    assert not _postgres_of(name) and name in clusters_left()
    take(db, tmp_path / "good", "custom")
    rb, _ = run_verification(db, backup=str(tmp_path / "good"))
    dropped = [f for f in by_check(rb)["backup.restore"] if f.title.startswith("dropped 1 scratch")]
    assert dropped and name in dropped[0].objects[0] and "owner process is gone" in dropped[0].detail
    assert worst(rb, "backup.restore") == "info" or by_check(rb)["backup.restore"][0].severity.value == "ok"
    assert not clusters_left()


def test_two_verifications_at_once_both_pass_and_leave_each_other_alone(db, tmp_path):
    """The second starts while the first restores (its sweep meets the first's live cluster) and ends before it.
    The first's restore sleeps 60 s: the second's whole run must fit in it on a loaded 2-core machine (20 s did
    not, with two suites and a third run beside it)."""
    db.execute(TINY)
    (tmp_path / "slow").mkdir()
    (tmp_path / "quick").mkdir()
    first = _child(db, _hostile(tmp_path / "slow", "SELECT pg_sleep(60);\n"))
    _wait_for_restore(first)
    second = _child(db, _hostile(tmp_path / "quick", "SELECT 1;\n"))
    outs = [second.communicate(timeout=120)]
    assert first.poll() is None, "the first run ended before the second: they did not overlap"
    outs.insert(0, first.communicate(timeout=120))
    for p, (out, err) in zip((first, second), outs):
        assert p.returncode == 0, err
        findings = json.loads(out.strip().splitlines()[-1])
        assert findings[0][0] == "ok", findings
        assert not [f for f in findings if "killed" in f[1] or "no run holds" in f[1]], findings
    assert not clusters_left()


# ------------------------------------------------------------------------------------------ 7, 8. bounds, files
def test_jobs_are_capped_by_cores_and_free_connections(db, tmp_path):
    seed(db)
    take(db, tmp_path, "custom")
    rb, v = run_verification(db, backup=str(tmp_path), jobs=100_000)
    cores = os.cpu_count() or 1
    assert f"--jobs={min(cores, 9)}" in v.result.command or cores == 1
    assert "jobs=100000 lowered to" in by_check(rb)["backup.restore"][0].detail


def test_non_positive_durations_are_refused():
    from opsbook.core.errors import ParameterError
    from opsbook.recovery.verify import objectives

    for bad in (0, -5, float("nan")):
        with pytest.raises(ParameterError, match="rto_minutes must be a positive"):
            objectives({}, rto_minutes=bad)
    with pytest.raises(ParameterError, match="rpo_hours"):
        objectives({}, rpo_hours=0)


def test_dumps_and_recovered_rows_are_private_and_prune_keeps_the_newest(db, tmp_path, monkeypatch):
    seed(db)
    folder = tmp_path / "new" / "backups"
    client = tools.choose(None)
    paths = [dump.take(client, db.conninfo, folder / dump.dump_name("t", "custom", at), "custom").path
             for at in (__import__("datetime").datetime(2026, 11, d, tzinfo=__import__("datetime").timezone.utc)
                        for d in (1, 2, 3))]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths} == {0o600}
    monkeypatch.setenv("OPSBOOK_REPORT_STEM", str(tmp_path / "report"))
    db.execute("DELETE FROM interactions; DELETE FROM leads WHERE id < 10")
    from opsbook.recovery.recover import TableRecovery

    rb = Runbook("table-recovery", "test", config=db.config())
    rb.connect()
    r = TableRecovery(rb, table="leads", backup=str(paths[-1])).run()
    rb.close()
    assert r.artifacts and {stat.S_IMODE(Path(p).stat().st_mode) for p in r.artifacts.values()} == {0o600}
    toml = tmp_path / "opsbook.toml"
    toml.write_text(f'[targets.t]\ndsn = "{db.conninfo}"\nbackups = "{folder}"\n')
    out = subprocess.run([sys.executable, "-m", "opsbook.cli", "--config", str(toml), "backups", "prune",
                          "--keep", "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "removed 2 dump(s)" in out.stdout, out.stderr
    assert sorted(folder.iterdir()) == [paths[-1]]


# ------------------------------------------------------------------------------------------ the demo's accident
def test_the_demo_deletes_known_rows_after_the_dump_and_puts_them_back_before_the_next(db, tmp_path, monkeypatch):
    from opsbook.recovery import demo_rows
    from opsbook.recovery.recover import TableRecovery

    monkeypatch.setenv("OPSBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPSBOOK_REPORT_STEM", str(tmp_path / "report"))
    seed(db)
    db.execute("CREATE TABLE quotes (id int PRIMARY KEY, lead_id bigint REFERENCES leads (id) ON DELETE CASCADE);"
               "INSERT INTO quotes SELECT g, g FROM generate_series(1, 10) g")
    before = checksums(db)
    demo_rows.around("backup-verification", db.conninfo)  # nothing to put back yet
    backup = take(db, tmp_path / "dumps", "custom")
    demo_rows.around("table-recovery", db.conninfo)
    stash = demo_rows.stash_path()
    ids = json.loads(stash.read_text())["ids"]
    assert len(ids) == demo_rows.COUNT and stat.S_IMODE(stash.stat().st_mode) == 0o600
    assert not set(ids) & {r[0] for r in db.execute("SELECT lead_id FROM interactions UNION SELECT lead_id FROM quotes")}
    rb = Runbook("table-recovery", "test", config=db.config())
    rb.connect()
    r = TableRecovery(rb, table="leads", backup=str(backup)).run()
    rb.close()
    assert r.diff.missing == demo_rows.COUNT and sorted(r.missing_sample["id"]) == ids
    demo_rows.around("backup-verification", db.conninfo)  # the next demo, before its dump
    assert checksums(db) == before and not stash.exists()


def test_on_a_scratch_server_a_held_database_is_never_an_orphan_and_only_old_unheld_ones_are_dropped(pg):
    """Each run holds an advisory lock on its own opsbook_verify_* database: a run beside it never reports it as
    left by a killed run; one nobody holds is dropped once older than a day, and said."""
    from opsbook.config.file import from_dict
    from opsbook.recovery.scratch import open_scratch

    config = from_dict({"targets": {"spare": {"dsn": pg.conninfo(), "scratch": True}}})
    old, young = "opsbook_verify_20200101_000000_abcd", f"opsbook_verify_{time.strftime('%Y%m%d_%H%M%S')}_beef"
    with psycopg.connect(pg.conninfo(), autocommit=True) as c:
        for name in (old, young):
            c.execute(f'CREATE DATABASE "{name}"')
    try:
        with open_scratch(config, "spare", None, "verify") as first:
            with open_scratch(config, "spare", None, "verify") as second:
                assert first.name not in second.leftovers and young in second.leftovers
                assert first.name in databases(pg) and second.name in databases(pg)
            assert [o["name"] for o in first.dropped_orphans] == [old]
        assert second.dropped and first.dropped and {first.name, second.name, old}.isdisjoint(databases(pg))
    finally:
        with psycopg.connect(pg.conninfo(), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{young}"')


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite runs as a normal user here: every cluster test covers it")
def test_a_normal_user_gets_a_throwaway_cluster_run_as_themselves(tmp_path):
    pw, home = unprivileged_home(tmp_path)
    user = pw.pw_name
    code = ("import sys, os, psycopg; sys.path.insert(0, %r)\n"
            "from opsbook.database.sandbox import throwaway_cluster\n"
            "with throwaway_cluster('opsbook_verify_20261201_000000_beef') as c:\n"
            "    c.make_database('opsbook_verify_20261201_000000_beef')\n"
            "    q = 'SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user'\n"
            "    with psycopg.connect(c.conninfo('opsbook_verify_20261201_000000_beef', 'opsbook_restore')) as x:\n"
            "        print(*x.execute(q).fetchone(), os.stat(f'/proc/{c.server.pid}').st_uid)\n"
            "print(sorted(p for p in os.listdir(c.root) if not p.startswith('.')))\n" % str(ROOT / "lib"))
    out = subprocess.run([sys.executable, "-c", code], user=user, group=user, extra_groups=[], capture_output=True,
                         text=True, env={"PATH": os.environ["PATH"], "HOME": str(home), "OPSBOOK_HOME": str(home)},
                         cwd=home, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [f"opsbook_restore False {pw.pw_uid}", "[]"]
