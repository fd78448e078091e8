"""Secrets for timers: a notifier's secret from the environment (copied by `schedule install` into an env file of
mode 0600 that the crontab line sources and the unit reads) or from a file named in opsbook.toml (mode 0600);
the installed line, run as cron runs it (`env -i HOME=.. PATH=.. sh -c LINE`), delivers to a real HTTP server,
and a run whose notifier cannot get its secret fails loudly (log, exit code, `schedule list`)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from local_servers import http_recorder
from opsbook.schedule.timers import config_id
from test_schedule_hostile import FAKE_CRONTAB, cron_command

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
OPSBOOK = Path(sys.executable).parent / "opsbook"
VAR = "OPSBOOK_TEST_HOOK_URL"


@pytest.fixture
def box(tmp_path):
    """(environment for opsbook, crontab file, HOME): a `crontab` on PATH that keeps the table in tmp_path,
    HOME and XDG_CONFIG_HOME in tmp_path (the env file and user units go there), no VAR inherited."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "crontab").write_text(FAKE_CRONTAB)
    (bindir / "crontab").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != VAR}
    env.update({"OPSBOOK_RUNBOOKS": str(FIXTURES), "OB_CRONTAB_FILE": str(tmp_path / "crontab.txt"), "HOME": str(home),
                "PATH": f"{bindir}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    return env, tmp_path / "crontab.txt", home


def config(tmp_path: Path, dsn: str, secret: str) -> Path:
    """A schedule due every minute on a real database, with one webhook notifier told of every run."""
    cfg = tmp_path / "opsbook.toml"
    cfg.write_text(f'[targets.test]\ndsn = {json.dumps(dsn)}\n'
                   f'[history]\nurl = {json.dumps("sqlite:///" + str(tmp_path / "history.sqlite"))}\n'
                   f'[reports]\ndir = {json.dumps(str(tmp_path / "reports"))}\n'
                   '[[schedules]]\nname = "minutely"\nrunbook = "connect"\ntargets = ["test"]\ncron = "* * * * *"\n'
                   'notify = ["hook"]\n'
                   f'[notify.hook]\nkind = "webhook"\non = ["done", "critical", "failed"]\nretries = 0\n{secret}\n')
    return cfg


def opsbook(env, cfg: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(OPSBOOK), "--config", str(cfg), *args], capture_output=True, text=True, env=env,
                          timeout=240)


def like_cron(line: str, home: Path, env) -> subprocess.CompletedProcess:
    """The crontab line's command as cron runs it: /bin/sh in a bare environment of HOME and PATH (and the test
    runbooks' folder, which is no secret)."""
    return subprocess.run(["env", "-i", f"HOME={home}", f"PATH={env['PATH']}", f"OPSBOOK_RUNBOOKS={FIXTURES}",
                           "sh", "-c", cron_command(line)], capture_output=True, text=True, cwd=home, timeout=240)


def installed_line(table: Path) -> str:
    return next(line for line in table.read_text().splitlines() if "schedule run-due" in line)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr


# ------------------------------------------------------------------------------------------ delivered
@pytest.mark.parametrize("how", ["url_env", "url_file"])
def test_the_installed_cron_line_run_as_cron_delivers_the_webhook(box, tmp_path, db, how):
    env, table, home = box
    with http_recorder() as hook:
        if how == "url_env":
            cfg = config(tmp_path, db.conninfo, f'url_env = "{VAR}"')
            env = {**env, VAR: hook.url}
        else:
            cfg = config(tmp_path, db.conninfo, 'url_file = "secrets/hook.url"')  # relative to opsbook.toml
            (tmp_path / "secrets").mkdir()
            (tmp_path / "secrets" / "hook.url").write_text(hook.url + "\n")
            (tmp_path / "secrets" / "hook.url").chmod(0o600)
        out = opsbook(env, cfg, "schedule", "install", "--cron")
        assert out.returncode == 0, out.stderr
        assert hook.url not in out.stdout + out.stderr, "the secret is never printed"
        line = installed_line(table)
        envfile = tmp_path / "xdg" / "opsbook" / f"schedule-cron-{config_id(cfg)}.env"
        if how == "url_env":
            assert f". {envfile} 2>> " in line and "set -a" in line and hook.url not in line
            assert mode(envfile) == 0o600 and mode(envfile.parent) == 0o700
            assert [x.split("=")[0] for x in envfile.read_text().splitlines() if not x.startswith("#")] == [VAR]
        else:
            assert not envfile.exists() and " . " not in line, "a secret in a file needs no env file"
        ran = like_cron(line, home, env)
        assert ran.returncode == 0 and ran.stderr == "", ran.stderr
        assert len(hook.posts) == 1, (tmp_path / "reports" / "schedule.log").read_text()
        assert hook.posts[0]["path"] == "/hook/secret-token-in-path"  # the whole URL, without the newline
        assert "connect on test" in hook.posts[0]["body"]["text"]
    log = (tmp_path / "reports" / "schedule.log").read_text()
    assert "not set" not in log and "FAILED" not in log and hook.url not in log, log


def test_systemd_unit_reads_the_env_file(box, tmp_path, db):
    env, _, _ = box
    cfg = config(tmp_path, db.conninfo, f'url_env = "{VAR}"')
    out = opsbook({**env, VAR: "https://hooks.example.com/T0/B0/secret"}, cfg, "schedule", "install", "--systemd",
                  "--user")
    assert out.returncode == 0, out.stderr
    assert "hooks.example.com" not in out.stdout + out.stderr and VAR in out.stdout  # named, never shown
    units = tmp_path / "xdg" / "systemd" / "user"
    envfile = tmp_path / "xdg" / "opsbook" / f"schedule-systemd-{config_id(cfg)}.env"
    service = (units / f"opsbook-schedule-{config_id(cfg)}.service").read_text()
    assert f"EnvironmentFile={envfile}\n" in service
    assert mode(envfile) == 0o600 and f'{VAR}="https://hooks.example.com/T0/B0/secret"' in envfile.read_text()
    gone = opsbook(env, cfg, "schedule", "uninstall", "--systemd", "--user")
    assert gone.returncode == 0 and not envfile.exists() and list(units.iterdir()) == []


def test_systemd_analyze_verify_accepts_the_unit_with_its_env_file(box, tmp_path, db):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here: the unit's syntax cannot be verified")
    env, _, _ = box
    cfg = config(tmp_path, db.conninfo, f'url_env = "{VAR}"')
    assert opsbook({**env, VAR: "http://127.0.0.1:9/x"}, cfg, "schedule", "install", "--systemd", "--user"
                   ).returncode == 0
    units = tmp_path / "xdg" / "systemd" / "user"
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, sorted(units.iterdir()))],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "EnvironmentFile" not in out.stderr, out.stderr


# ------------------------------------------------------------------------------------------ refused at install
def test_a_secret_file_readable_by_others_is_refused(box, tmp_path, db):
    env, table, _ = box
    cfg = config(tmp_path, db.conninfo, 'url_file = "hook.url"')
    (tmp_path / "hook.url").write_text("http://127.0.0.1:9/secret-token\n")
    (tmp_path / "hook.url").chmod(0o644)
    for how in (["--cron"], ["--systemd", "--user"]):
        err = one_line_error(opsbook(env, cfg, "schedule", "install", *how))
        assert f"{tmp_path / 'hook.url'} has mode 0644" in err and "notifier 'hook': url_file" in err, err
        assert "secret-token" not in err
    assert not table.exists() and not (tmp_path / "xdg").exists(), "nothing installed"
    (tmp_path / "hook.url").unlink()
    err = one_line_error(opsbook(env, cfg, "schedule", "install", "--cron"))
    assert f"cannot read {tmp_path / 'hook.url'}" in err


def test_an_unset_variable_at_install_time_is_refused(box, tmp_path, db):
    env, table, _ = box
    cfg = config(tmp_path, db.conninfo, f'url_env = "{VAR}"')
    for how in (["--cron"], ["--systemd", "--user"], ["--cron", "--dry-run"]):
        err = one_line_error(opsbook(env, cfg, "schedule", "install", *how))
        assert f"notifier 'hook': url_env names {VAR}, which is not set in this shell" in err, err
    assert not table.exists() and not (tmp_path / "xdg").exists(), "nothing installed"


def test_both_env_and_file_for_one_secret_is_refused(box, tmp_path, db):
    env, _, _ = box
    cfg = config(tmp_path, db.conninfo, f'url_env = "{VAR}"\nurl_file = "hook.url"')
    err = one_line_error(opsbook(env, cfg, "schedule", "list"))
    assert "give url_env or url_file for the webhook URL, not both" in err


# ------------------------------------------------------------------------------------------ missing at run time
def test_a_secret_file_gone_bad_after_install_fails_the_run_loudly(box, tmp_path, db):
    env, table, home = box
    cfg = config(tmp_path, db.conninfo, 'url_file = "hook.url"')
    with http_recorder() as hook:
        (tmp_path / "hook.url").write_text(hook.url)
        (tmp_path / "hook.url").chmod(0o600)
        assert opsbook(env, cfg, "schedule", "install", "--cron").returncode == 0
        (tmp_path / "hook.url").chmod(0o640)  # someone "fixed" the permissions for a colleague
        ran = like_cron(installed_line(table), home, env)
        assert ran.returncode == 1, ran.stdout + ran.stderr  # run-due's own code: the notifier failed
        assert hook.posts == []
    log = (tmp_path / "reports" / "schedule.log").read_text()
    assert f"minutely on test: notifier hook FAILED: notifier 'hook': url_file: {tmp_path / 'hook.url'} has mode " \
           "0640" in log, log
    assert hook.url not in log
    listed = opsbook(env, cfg, "schedule", "list")
    assert listed.returncode == 0, listed.stderr
    assert "  notifier hook FAILED at " in listed.stdout and "has mode 0640" in listed.stdout, listed.stdout
    rows = json.loads(opsbook(env, cfg, "schedule", "list", "--json").stdout)
    assert rows[0]["last_status"] == "ok" and rows[0]["last_notify_failures"][0]["notifier"] == "hook"


def test_a_variable_missing_at_run_time_fails_the_run_loudly(box, tmp_path, db):
    """A timer installed by hand (or before this fix) hands run-due no variable: the run says so, exit 1."""
    env, _, home = box
    cfg = config(tmp_path, db.conninfo, f'url_env = "{VAR}"')
    ran = subprocess.run(["env", "-i", f"HOME={home}", f"PATH={env['PATH']}", f"OPSBOOK_RUNBOOKS={FIXTURES}",
                          str(OPSBOOK), "--config", str(cfg), "schedule", "run-due"],
                         capture_output=True, text=True, timeout=240)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert f"minutely on test: notifier hook FAILED: environment variable {VAR} (the webhook URL) is not set" \
        in ran.stderr
    listed = opsbook(env, cfg, "schedule", "list")
    assert "notifier hook FAILED at " in listed.stdout and f"{VAR} (the webhook URL) is not set" in listed.stdout
