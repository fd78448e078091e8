"""The `opsbook` command line: CliRunner for the shape, real subprocesses for exit codes, streams and secrets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from opsbook.cli import commands
from opsbook.cli import main as cli
from report_checks import assert_report_files
from report_checks import offline_sweep  # noqa: F401 - autouse: checks every page this module writes

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def opsbook(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command in a child process, as a user or a cron job runs it."""
    return subprocess.run([sys.executable, "-m", "opsbook.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


@pytest.fixture
def fixtures_dir(monkeypatch):
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(FIXTURES))


def test_list_and_describe(fixtures_dir):
    out = invoke("list").output.splitlines()
    assert [line.split()[0] for line in out] == ["chart", "connect", "empty", "failing"]
    assert "The floor: a kernel start" in out[2]
    described = invoke("describe", "chart").output.splitlines()
    assert described[2].split()[:3] == ["window_minutes", "int", "60"] and "look-back window" in described[2]
    as_json = json.loads(invoke("describe", "failing", "--json").output)
    assert as_json[1] == {"name": "mode", "type": "str", "default": "raise", "help": "raise | die | pass",
                          "allowed": None}


def test_checks_catalogue_documents_every_threshold():
    entries = json.loads(invoke("checks", "--json").output)
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids) and "connectivity.unreachable" in ids
    for e in entries:
        assert e["concern"] == e["id"].split(".")[0] and e["description"]
        for t in e["thresholds"]:
            assert {"name", "default", "unit", "source"} <= set(t) and t["unit"] and t["source"]
    human = invoke("checks").output
    assert "connectivity.unreachable  (connectivity)" in human and "- slow_connect_ms = 2000 ms" in human


def test_db_status_reads_without_starting(monkeypatch, tmp_path):
    monkeypatch.setenv("OPSBOOK_HOME", str(tmp_path / "home"))
    status = json.loads(invoke("db", "status", "--json").output)
    assert status["running"] is False and status["initialized"] is False
    assert status["data_dir"] == str(tmp_path / "home" / "embedded")
    assert "not initialised (`opsbook db start` creates it)" in invoke("db", "status").output
    assert not (tmp_path / "home" / "embedded" / "PG_VERSION").exists()


def test_db_status_of_a_running_server_gives_the_demo_dsn_and_a_psql_line_that_works(demo_database):
    import shlex
    import subprocess

    status = json.loads(invoke("db", "status", "--json").output)
    assert status["running"] is True and "dbname=demo" in status["dsn"]
    assert f"psql: {status['psql']}" in invoke("db", "status").output
    out = subprocess.run([*shlex.split(status["psql"]), "-Atc", "SELECT current_database()"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "demo", out.stderr


def test_lab_gets_the_absolute_config_path(tmp_path):
    from opsbook.run.lab import lab_command

    (tmp_path / "opsbook.toml").write_text("")
    cmd, env = lab_command(Path("opsbook.toml"), no_browser=True)
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"] and "--no-browser" in cmd
    assert env["OPSBOOK_CONFIG"] == str(tmp_path / "opsbook.toml")
    assert cmd[3] == f"--ServerApp.root_dir={Path(__file__).resolve().parents[1] / 'runbooks'}"


def test_extra_command_modules_are_discovered(tmp_path, monkeypatch):
    (tmp_path / "zz_extra.py").write_text(
        "import click\n@click.command()\ndef hello():\n    '''Say hello with the config in use.'''\n"
        "    from opsbook.cli.commands import current_config\n"
        "    click.echo('hello ' + ','.join(sorted(current_config().targets)))\nCOMMANDS = [hello]\n")
    (tmp_path / "zz_broken.py").write_text("raise RuntimeError('half-written add-on')\n")
    (tmp_path / "opsbook.toml").write_text('[targets.prod]\ndsn = "host=db.example dbname=app"\n')
    monkeypatch.setattr(commands, "__path__", [*commands.__path__, str(tmp_path)])
    monkeypatch.setattr(cli.OpsbookGroup, "_extra", None)
    result = CliRunner().invoke(cli.main, ["--config", "opsbook.toml", "hello"])
    assert result.exit_code == 0 and result.stdout == "hello demo,prod\n"
    assert "commands/zz_broken.py could not be loaded: RuntimeError" in result.stderr
    assert "hello" in CliRunner().invoke(cli.main, ["--help"]).stdout
    monkeypatch.setattr(cli.OpsbookGroup, "_extra", None)


BAD_USAGE = [
    (["run", "no-such-runbook"], "runbook 'no-such-runbook' not found; known: chart, connect, empty, failing"),
    (["run", "empty", "--target", "prod"], "target 'prod' not found in the configuration; known: demo"),
    (["run", "chart", "-p", "windw=5"], "unknown parameter 'windw'; known: target, thresholds, window_minutes"),
    (["run", "chart", "-p", "window_minutes=soon"], "parameter 'window_minutes' expects int, got 'soon'"),
    (["--config", "bad.toml", "run", "empty"], "config file bad.toml is not valid TOML"),
    (["--config", "missing.toml", "run", "empty"], "config file missing.toml not found"),
    (["run", "empty", "--fail-on", "info"], "Invalid value for '--fail-on'"),
    (["run", "empty", "-p", "novalue"], "parameter 'novalue' must look like NAME=VALUE"),
    (["describe"], "Missing argument 'RUNBOOK'"),
    (["frobnicate"], "No such command 'frobnicate'"),
]


@pytest.mark.parametrize("args, message", BAD_USAGE, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_usage_is_one_line_exit_2(fixtures_dir, tmp_path, args, message):
    (tmp_path / "bad.toml").write_text("[targets.prod\ndsn = ")
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith("opsbook: error: ") and message in result.stderr
    assert not (tmp_path / "reports").exists()


def test_bad_usage_in_a_real_process_has_no_traceback(tmp_path):
    (tmp_path / "bad.toml").write_text('[targets.x]\ndsn = "host=h password=hunter2-secret"\n')
    env = {"OPSBOOK_RUNBOOKS": str(FIXTURES)}
    for args, message in [*BAD_USAGE[:4], (["--config", "bad.toml", "run", "empty"], "has a password in its dsn")]:
        p = opsbook(*args, env=env, cwd=tmp_path)
        assert p.returncode == 2 and p.stdout == "", (args, p.stderr)
        assert p.stderr.count("\n") == 1 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert "hunter2-secret" not in p.stderr


@pytest.mark.slow
def test_run_json_prints_the_contract(fixtures_dir, tmp_path):
    result = CliRunner().invoke(cli.main, ["run", "empty", "--json", "--output-dir", "out"])
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert {"status", "runbook", "target", "report_html", "notebook", "sidecar", "findings", "metrics"} <= set(printed)
    assert printed["status"] == "ok" and printed["runbook"] == "empty" and printed["target"] == "demo"
    sidecar = assert_report_files(Path(printed["report_html"]).with_suffix(""))
    assert printed["findings"] == sidecar["findings"] and Path(printed["sidecar"]).parent.parent == tmp_path / "out"
    assert result.stderr == ""


@pytest.fixture
def pw_role(db):
    """A login role with a password on the test server, reachable only over TCP 127.0.0.1 (scram)."""
    password = "Cli-Secret-7f3a9-horse"
    with psycopg.connect(db.server.conninfo(), autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS opsbook_cli_pw")
        c.execute(f"CREATE ROLE opsbook_cli_pw LOGIN PASSWORD '{password}' IN ROLE pg_monitor")
    yield "opsbook_cli_pw", password, db.server.configured_port(), db.name
    with psycopg.connect(db.server.conninfo(), autocommit=True) as c:
        c.execute(f'REVOKE ALL ON DATABASE "{db.name}" FROM opsbook_cli_pw')
        c.execute("DROP ROLE IF EXISTS opsbook_cli_pw")


def run_connect(tmp_path, target: dict, env: dict, *extra: str):
    """The `connect` fixture (how every runbook starts) against target `t`, as a real process."""
    (tmp_path / "opsbook.toml").write_text("[targets.t]\n" + "".join(f'{k} = "{v}"\n' for k, v in target.items()))
    p = opsbook("run", "connect", "--target", "t", "--output-dir", "out", "--json", *extra,
                env={"OPSBOOK_RUNBOOKS": str(FIXTURES), **env}, cwd=tmp_path)
    assert p.returncode in (0, 3), p.stderr
    printed = json.loads(p.stdout)
    files = [Path(printed[k]) for k in ("report_html", "notebook", "sidecar")]
    return p, printed, "".join(f.read_text() for f in files) + p.stdout + p.stderr


@pytest.mark.slow
def test_password_from_pgpassword_reaches_no_output(pw_role, tmp_path):
    user, password, port, dbname = pw_role
    p, printed, everything = run_connect(tmp_path, {"dsn": f"host=127.0.0.1 port={port} user={user} dbname={dbname}"},
                                        {"PGPASSWORD": password})
    assert p.returncode == 0 and p.stderr == ""
    [f, role] = printed["findings"]
    assert (f["check"], f["severity"]) == ("connectivity.unreachable", "ok"), "connected, password from PGPASSWORD"
    assert (role["check"], role["objects"]) == ("connectivity.role", [user])
    assert printed["metrics"]["server_version_num"] >= 180000
    assert f"connected as {user}" in Path(printed["notebook"]).read_text()
    assert password not in everything and "was redacted" not in everything


@pytest.mark.slow
def test_wrong_password_in_a_dsn_env_is_a_critical_finding_and_never_shown(pw_role, tmp_path):
    user, _, port, dbname = pw_role
    wrong = "Wrong-Secret-42c1e-staple"
    p, printed, everything = run_connect(tmp_path, {"dsn_env": "OPSBOOK_TEST_DSN"},
                                        {"OPSBOOK_TEST_DSN": f"postgresql://{user}:{wrong}@127.0.0.1:{port}/{dbname}"})
    [f] = printed["findings"]
    assert (p.returncode, f["check"], f["severity"], f["value"]) == (0, "connectivity.unreachable", "critical", "auth")
    assert "authentication failed" in f["title"] and f"postgresql://{user}:***@127.0.0.1:{port}/{dbname}" in f["objects"][0]
    assert wrong not in everything and "was redacted" not in everything


@pytest.mark.slow
def test_nothing_listening_is_critical_and_fail_on_exits_3(tmp_path):
    from conftest import free_port

    p, printed, _ = run_connect(tmp_path, {"dsn": f"host=127.0.0.1 port={free_port()} user=x dbname=y"}, {},
                               "--fail-on", "critical")
    [f] = printed["findings"]
    assert (f["severity"], f["value"], "nothing is listening" in f["title"]) == ("critical", "refused", True)
    assert p.returncode == 3 and printed["exit_code"] == 3 and printed["status"] == "ok"
    assert p.stderr == "opsbook: findings at or above critical (--fail-on)\n"


def test_bad_thresholds_in_the_config_file_are_usage_errors(tmp_path):
    """An unknown check id or threshold name in opsbook.toml exits 2 before anything runs, like a bad -p."""
    from click.testing import CliRunner

    from opsbook.cli.main import main

    for body, message in (('[thresholds."nope.check"]\nwarning = 5\n', "unknown check 'nope.check'"),
                          ('[thresholds."activity.long_running"]\nwarn = 5\n', "no threshold 'warn'")):
        cfg = tmp_path / "opsbook.toml"
        cfg.write_text(body)
        result = CliRunner().invoke(main, ["--config", str(cfg), "run", "incident-triage"])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_snapshot_all_means_the_configured_targets_and_one_error_skips_none(db, tmp_path, monkeypatch):
    """`--all` is the file's targets (not the built-in demo, which would build a 500 MB database), and a target
    whose dsn_env is unset is reported while the ones after it are still taken."""
    from opsbook.history.readers import HistoryStore

    monkeypatch.delenv("OPSBOOK_TEST_UNSET_DSN", raising=False)
    store = tmp_path / "h.sqlite"
    (tmp_path / "opsbook.toml").write_text(f'[targets.a_unset]\ndsn_env = "OPSBOOK_TEST_UNSET_DSN"\n'
                                           f'[targets.b]\ndsn = "{db.conninfo}"\n'
                                           f'[history]\nurl = "sqlite:///{store}"\n')
    result = CliRunner().invoke(cli.main, ["snapshot", "--all"])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("b: snapshot 1") and "demo" not in result.output
    assert result.stderr.strip() == ("opsbook: a_unset: snapshot failed: target 'a_unset': environment variable "
                                     "OPSBOOK_TEST_UNSET_DSN is not set")
    s = HistoryStore(f"sqlite:///{store}")
    assert s.targets() == ["b"]
    s.close()
