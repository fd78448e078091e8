"""Plain scripts meet psql's own guard (issue 20): a `\\restrict` line with a fresh key before any byte of the
backup, a lexer that follows psql's client encoding and string syntax, an older psql refused, and psql never run
as root. Every case runs the real restore path on real servers, with psql 18 (embedded) and Debian's psql 15."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from conftest import PG15_BIN
from opsbook.config.file import Target
from opsbook.database.embedded import embedded_bindir
from opsbook.recovery import archive, restore, script, tools
from opsbook.recovery.scratch import open_scratch, prepare
from opsbook.recovery.script import ScriptGuard
from test_backup_verification import by_check
from test_containment import clusters_left, run_verification

HEADER = "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.14\n-- Dumped by pg_dump " \
         "version 15.14\n\n"
TINY = "CREATE TABLE notes (id int PRIMARY KEY, body text);\nINSERT INTO notes VALUES (1, 'one');\n"


def _clients() -> list:
    out = [pytest.param(embedded_bindir(), id="psql18")]
    out.append(pytest.param(PG15_BIN, id="psql15", marks=pytest.mark.skipif(
        not (PG15_BIN / "psql").exists(), reason="Debian's psql 15 is not installed")))
    return out


@pytest.fixture
def shared_dir():
    """A folder every account may write into: where a smuggled shell command would leave its marker, whether psql
    runs as root, as the server account or as the invoking user."""
    path = Path(tempfile.mkdtemp(prefix="opsbook-guard-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _attack(kind: str, marker: Path) -> bytes:
    """A script where the guard, lexing as UTF-8 with standard_conforming_strings on, thinks the `\\!` line is
    inside a string literal while psql, following the SET, runs it."""
    shell = f"\\! touch {marker}\n".encode()
    if kind == "sjis":  # 0x95 0x5C is one character in SJIS; for a UTF-8 reader, 0x5C is a backslash
        body = b"SET client_encoding = 'SJIS';\nSELECT E'\x95\x5c';\n" + shell + b"';\n"
    elif kind == "big5-alias":  # 0xA4 0x5C is one character in BIG5 (here by its Windows alias)
        body = b"SET client_encoding TO \"WIN950\";\nSELECT E'\xa4\x5c';\n" + shell + b"';\n"
    elif kind == "names":
        body = b"SET NAMES 'sjis';\nSELECT E'\x95\x5c';\n" + shell + b"';\n"
    elif kind == "set_config":
        body = b"SELECT pg_catalog.set_config('client_encoding', 'Shift_JIS', false);\nSELECT E'\x95\x5c';\n" + \
            shell + b"';\n"
    elif kind == "scs_false":  # with backslash escapes, 'a\'' is one string; the guard sees 'a\' and an open quote
        body = b"SET standard_conforming_strings = false;\nSELECT 'a\\'';\n" + shell + b"';\n"
    else:  # standard_conforming_strings through set_config, spelled 0
        body = b"SELECT set_config('standard_conforming_strings', '0', false);\nSELECT 'a\\'';\n" + shell + b"';\n"
    return HEADER.encode() + b"SET standard_conforming_strings = on;\n" + TINY.encode() + body + b"SELECT 2;\n"


ATTACKS = ["sjis", "big5-alias", "names", "set_config", "scs_false", "scs_set_config"]


def _restore_plain(path: Path, bindir: Path, config=None, target: str | None = None):
    backup = archive.describe(path)
    client = tools.probe(str(bindir), "given")
    with open_scratch(config, target, None, "verify") as scratch:
        prepare(scratch, backup, client)
        result = restore.restore(backup, client, scratch.conninfo, scratch=scratch, timeout_s=120)
    return result, scratch


# ------------------------------------------------------------------------------------------ 1. the lexer follows psql
@pytest.mark.parametrize("kind", ["sjis", "scs_false"])
def test_a_string_syntax_change_never_lets_a_shell_command_through_the_runbook(db, tmp_path, shared_dir, kind):
    marker = shared_dir / "shell-ran"
    path = tmp_path / "hostile.sql"
    path.write_bytes(_attack(kind, marker))
    db.execute(TINY)
    rb, v = run_verification(db, backup=str(path))
    assert not marker.exists(), "a shell command in the backup ran"
    integrity = by_check(rb)["backup.integrity"][0]
    assert integrity.severity.value == "critical" and "refused" in integrity.title, integrity.title
    assert "line 11" in integrity.detail
    restored = by_check(rb)["backup.restore"]
    assert all(f.skipped for f in restored) and not any("without errors" in f.title for f in rb.findings)
    assert v.result is None and not clusters_left()


@pytest.mark.parametrize("bindir", _clients())
@pytest.mark.parametrize("kind", ATTACKS)
def test_the_feed_to_psql_refuses_a_string_syntax_change(tmp_path, shared_dir, bindir, kind):
    """The restore function itself (no scan before it): the guard on the pipe refuses the SET, psql never sees
    the line that would run a command."""
    marker = shared_dir / "shell-ran"
    path = tmp_path / "hostile.sql"
    path.write_bytes(_attack(kind, marker))
    result, scratch = _restore_plain(path, bindir)
    assert not marker.exists(), "a shell command in the backup ran"
    assert result.refused and "line 11" in result.refused and not result.completed, result
    assert scratch.dropped


@pytest.mark.parametrize("bindir", _clients())
@pytest.mark.parametrize("kind", ["sjis", "scs_false"])
def test_on_a_scratch_target_too(db, pg15, tmp_path, shared_dir, bindir, kind):
    """The restore_target path, where the defect ran the command as root."""
    marker = shared_dir / "shell-ran"
    path = tmp_path / "hostile.sql"
    path.write_bytes(_attack(kind, marker))
    config = db.config()
    config.targets["spare"] = Target("spare", dsn=pg15.conninfo(), extra={"scratch": True})
    result, scratch = _restore_plain(path, bindir, config, "spare")
    assert not marker.exists(), "a shell command in the backup ran"
    assert result.refused and not result.completed and scratch.dropped


@pytest.mark.parametrize("line, refused", [
    ("SET client_encoding = 'SJIS';", True), ("SET client_encoding TO sjis;", True),
    ("SET SESSION client_encoding = \"Shift_JIS\";", True), ("set local CLIENT_ENCODING to 'mskanji';", True),
    ("SET client_encoding = 'SHIFT_JIS_2004';", True), ("SET client_encoding = 'BIG5';", True),
    ("SET client_encoding = 'GBK';", True), ("SET client_encoding = 'UHC';", True),
    ("SET client_encoding = 'GB18030';", True), ("SET client_encoding = 'JOHAB';", True),
    ("SET client_encoding = 'WIN932';", True), ("SET client_encoding = 'windows-936';", True),
    ("SET client_encoding = 'Windows_949';", True), ("SET client_encoding = E'\\x53JIS';", True),
    ("SET client_encoding = U&'\\0053JIS';", True), ("SET /* c */ client_encoding -- c\n= 'SJIS';", True),
    ("SET NAMES 'BIG5';", True), ("SET NAMES gbk;", True),
    ("SELECT pg_catalog.set_config('client_encoding', 'SJIS', false);", True),
    ("SELECT set_config(E'client\\x5fencoding', $$uhc$$, false);", True),
    ("UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding';", True),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
     "EXECUTE 'SET client_encoding = ''SJIS'''; END $$;", True),
    ("SET standard_conforming_strings = off;", True), ("SET standard_conforming_strings = false;", True),
    ("SET standard_conforming_strings TO no;", True), ("SET standard_conforming_strings = 0;", True),
    ("SET standard_conforming_strings = 'off';", True), ("SET standard_conforming_strings = \"off\";", True),
    ("SET SESSION standard_conforming_strings TO 'of';", True),
    ("SET LOCAL standard_conforming_strings = f;", True),
    ("SELECT set_config('standard_conforming_strings', 'false', false);", True),
    ("SELECT set_config('standard_conforming_strings', current_setting('x'), false);", True),
    ("SET standard_conforming_strings = on;", False), ("SET standard_conforming_strings TO 'true';", False),
    ("SET standard_conforming_strings = 1;", False), ("SET standard_conforming_strings = DEFAULT;", False),
    ("SET client_encoding = 'UTF8';", False), ("SET client_encoding = 'LATIN1';", False),
    ("SET client_encoding = 'EUC_JP';", False), ("SELECT pg_catalog.set_config('search_path', '', false);", False),
    ("SELECT set_config('request.jwt.claims', x::text, true) FROM t;", False),
    ("COMMENT ON TABLE t IS 'SET client_encoding to the encoding of the file';", False),
])
def test_every_spelling_of_a_string_syntax_change_is_refused(line, refused):
    guard = ScriptGuard()
    got = [d.refusal for raw in (line + "\n").encode().splitlines(keepends=True) for d in [guard.judge(raw)]
           if d.refusal]
    assert bool(got) == refused, (line, got)


def test_restrict_lines_of_pg_dump_never_reach_psql_and_any_other_unrestrict_is_refused():
    guard = ScriptGuard()
    assert not guard.judge(b"\\restrict Q1w2E3\n").keep and not guard.judge(b"\\unrestrict Q1w2E3\n").keep
    assert guard.judge(b"SELECT 1; \\unrestrict Q1w2E3\n").refusal is not None
    assert ScriptGuard().judge(b"\\encoding SJIS\n").refusal is not None


# ------------------------------------------------------------------------------------------ 2. psql's \restrict
@pytest.mark.parametrize("bindir", _clients())
def test_restrict_holds_even_when_the_lexer_is_fooled(tmp_path, shared_dir, bindir, monkeypatch):
    """Suppose the guard misses a meta-command (a lexer gap nobody has found yet): psql, restricted by opsbook's
    own key before the first byte of the backup, runs none of it, and the restore is reported refused."""
    original = ScriptGuard.judge

    def fooled(self, raw):
        decision = original(self, raw)
        return script.Decision(True) if decision.refusal is not None else decision

    monkeypatch.setattr(ScriptGuard, "judge", fooled)
    marker, piped = shared_dir / "shell-ran", shared_dir / "pipe-ran"
    path = tmp_path / "hostile.sql"
    path.write_text(HEADER + TINY + "SELECT 1; \\unrestrict guessed\n"
                    f"SELECT 1 \\g |touch {piped}\n\\! touch {marker}\nSELECT 2;\n")
    result, scratch = _restore_plain(path, bindir)
    assert not marker.exists() and not piped.exists(), "a shell command in the backup ran"
    assert result.refused and "psql refused" in result.refused and "line 10" in result.refused, result
    assert not result.completed and scratch.dropped


@pytest.mark.parametrize("bindir", _clients())
def test_a_pg_dump_script_with_its_own_restrict_lines_restores_cleanly(db, tmp_path, bindir):
    db.execute(TINY)
    path = tmp_path / "dump.sql"
    path.write_text(HEADER + "\\restrict AbC123\n\nSET standard_conforming_strings = on;\n" + TINY
                    + "COPY public.notes (id, body) FROM stdin;\n2\t\\\\! two\n\\.\n\n\\unrestrict AbC123\n")
    result, _ = _restore_plain(path, bindir)
    assert result.completed and not result.errors and not result.refused, result


@pytest.mark.parametrize("version", ["12.22", "13.21", "14.18", "15.13", "16.9", "17.5", "18beta2"])
def test_a_psql_without_restrict_is_refused_for_plain_scripts(tmp_path, shared_dir, version):
    """psql before 13.22, 14.19, 15.14, 16.10 and 17.6 has no \\restrict: it is never given a plain script (a
    stand-in binary with that version: older builds are not installable here)."""
    marker = shared_dir / "old-psql-fed"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in tools.TOOLS:
        (bindir / tool).write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && echo '{tool} (PostgreSQL) {version}' "
                                   f"&& exit 0\ncat >/dev/null; touch {marker}\n")
        (bindir / tool).chmod(0o755)
    client = tools.Client(bindir, version, int(version[:2]), None, "given")
    path = tmp_path / "plain.sql"
    path.write_text(HEADER + TINY)
    with open_scratch(None, None, None, "verify") as scratch:
        result = restore.restore(archive.describe(path), client, scratch.conninfo, scratch=scratch)
    assert not marker.exists(), "the old psql was given the script"
    assert not result.completed and "\\restrict" in result.fatal and version in result.fatal, result.fatal


@pytest.mark.parametrize("text, ok", [
    ("psql (PostgreSQL) 13.22", True), ("psql (PostgreSQL) 14.19", True),
    ("psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", True), ("psql (PostgreSQL) 16.10", True),
    ("psql (PostgreSQL) 17.6", True), ("psql (PostgreSQL) 18.0", True), ("psql (PostgreSQL) 19devel", True),
    ("psql (PostgreSQL) 17.5", False), ("psql (PostgreSQL) 9.6.24", False), ("psql (PostgreSQL) 18beta1", False),
    ("garbage", False)])
def test_which_psql_has_restrict(text, ok):
    assert (script.restrict_problem(text) is None) == ok


# ------------------------------------------------------------------------------------------ 3. never as root
def _watch_psql(stop: threading.Event, found: dict, admin: str | None) -> None:
    """The psql this process started: its uid, then end the backend it sleeps in (no fixed sleep to race)."""
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            # the psql replaying the script, not the `psql --version` asked before it (no untrusted byte in that)
            if int(fields["PPid"]) == os.getpid() and cmd[0].endswith(b"/psql") and b"--version" not in cmd:
                found.setdefault("uids", {int(u) for u in fields["Uid"].split()})
        if "uids" in found and admin:
            with psycopg.connect(admin, autocommit=True) as c:
                if c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE "
                             "'SELECT pg_sleep(600)%' AND pid <> pg_backend_pid()").fetchall():
                    return
        time.sleep(0.02)


@pytest.mark.skipif(os.geteuid() != 0, reason="psql runs as root only when opsbook does")
@pytest.mark.parametrize("bindir", _clients())
@pytest.mark.parametrize("where", ["cluster", "target"])
def test_psql_never_runs_as_root(db, pg15, tmp_path, monkeypatch, bindir, where):
    """As root: the psql replaying the backup runs as the unprivileged server account, into a throwaway cluster
    and into a scratch = true target alike (reached with a password, so the connection goes through a service
    file that account must read)."""
    path = tmp_path / "slow.sql"
    path.write_text(HEADER + TINY + "SELECT pg_sleep(600);\n")
    config, target, admin = None, None, None
    if where == "target":
        monkeypatch.setenv("SPARE_DSN", pg15.conninfo() + f" password=unused-{uuid.uuid4().hex}")
        config = db.config()
        config.targets["spare"] = Target("spare", dsn_env="SPARE_DSN", extra={"scratch": True})
        target, admin = "spare", pg15.conninfo()
    backup = archive.describe(path)
    client = tools.probe(str(bindir), "given")
    found: dict = {}
    stop = threading.Event()
    with open_scratch(config, target, None, "verify") as scratch:
        prepare(scratch, backup, client)
        watcher = threading.Thread(target=_watch_psql, args=(stop, found, admin or scratch.admin_conninfo))
        watcher.start()
        try:
            result = restore.restore(backup, client, scratch.conninfo, scratch=scratch, timeout_s=120)
        finally:
            stop.set()
            watcher.join()
    assert found.get("uids"), "psql was never seen running"
    assert 0 not in found["uids"], f"psql ran with uids {found['uids']}"
    assert not result.refused and result.duration_s < 100, result
