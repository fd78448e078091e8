"""Schedules written safely: configuration values cannot add crontab lines or unit settings, systemd's `%` and
`$` are escaped, `uninstall` removes all `install` wrote, and a job row only runs its own schedule's targets."""
from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opsbook.config.file import from_dict
from opsbook.schedule.install import MARKER
from opsbook.schedule.jobs import JobStore, job_runs
from opsbook.schedule.runs import run_due
from opsbook.schedule.timers import config_id

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
OPSBOOK = Path(sys.executable).parent / "opsbook"
UTC = dt.timezone.utc
# cron is not installed here: a `crontab` that keeps the table in a file, as `crontab -l` / `crontab -` do
FAKE_CRONTAB = """#!/bin/sh
case "$1" in
  -l) if [ -f "$OB_CRONTAB_FILE" ]; then cat "$OB_CRONTAB_FILE"; else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;
  -) cat > "$OB_CRONTAB_FILE" ;;
  *) echo "unexpected crontab arguments: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def cron(tmp_path):
    """(environment for opsbook, the crontab file): a `crontab` on PATH that writes into tmp_path."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "crontab").write_text(FAKE_CRONTAB)
    (bindir / "crontab").chmod(0o755)
    table = tmp_path / "crontab.txt"
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES), "OB_CRONTAB_FILE": str(table),
           "PATH": f"{bindir}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    return env, table


def opsbook(env, *args, config: Path | None = None):
    cmd = [str(OPSBOOK), *(["--config", str(config)] if config else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def cron_command(line: str) -> str:
    """What cron hands to /bin/sh for a crontab line: the text after the five time fields, up to the first `%`
    not escaped by a backslash (the rest is stdin), with `\\%` turned into `%` (cron's do_command.c)."""
    text = line.split(None, 5)[5]
    out, escaped = [], False
    for ch in text:
        if escaped:
            if ch == "%":
                out[-1] = "%"
            else:
                out.append(ch)
            escaped = False
            continue
        if ch == "%":
            break
        escaped = ch == "\\"
        out.append(ch)
    return "".join(out)


def run_like_cron(line: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    """Run one crontab line as cron does: its command through `sh -c`, in a bare environment."""
    return subprocess.run(["sh", "-c", cron_command(line)], capture_output=True, text=True, cwd=cwd, timeout=240,
                          env={"OPSBOOK_RUNBOOKS": str(FIXTURES), **env})


def toml_config(path: Path, reports_dir: str) -> Path:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    # no schedules: run-due has nothing to do, so running the line costs no kernel
    path.write_text(f"[reports]\ndir = {json.dumps(reports_dir)}\n")
    return path


# ------------------------------------------------------------------------------------------ refused values
@pytest.mark.parametrize("how", [["--cron"], ["--cron", "--dry-run"]])
@pytest.mark.parametrize("bad, says", [("\n", "a newline"), ("\r", "a carriage return"), ("\x00", "a NUL")])
def test_a_control_character_in_the_reports_dir_is_refused_naming_the_key(cron, tmp_path, how, bad, says):
    env, table = cron
    pwned = tmp_path / "pwned"
    # the attack of the issue: the rest of the value becomes a crontab entry of its own, which cron runs
    cfg = toml_config(tmp_path / "opsbook.toml", f"x{bad}* * * * * touch {pwned} #")
    table.write_text("0 3 * * * /usr/local/bin/backup\n")
    out = opsbook(env, "schedule", "install", *how, config=cfg)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    if bad == "\x00":  # the configuration's loader refuses it first (TOML allows "\u0000")
        assert "reports.dir" in out.stderr, out.stderr
    else:
        assert "[reports] dir" in out.stderr and says in out.stderr, out.stderr
    assert table.read_text() == "0 3 * * * /usr/local/bin/backup\n", "nothing written"


@pytest.mark.parametrize("how", [["--cron"], ["--systemd", "--user"]])
def test_a_newline_in_the_config_path_is_refused(cron, tmp_path, how):
    env, table = cron
    folder = tmp_path / f"c\nExecStartPre=/bin/touch {tmp_path}/pwned\n* * * * * touch {tmp_path}/pwned #"
    cfg = toml_config(folder / "opsbook.toml", str(tmp_path / "reports"))
    out = opsbook(env, "schedule", "install", *how, config=cfg)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "--config" in out.stderr and "a newline" in out.stderr
    assert not table.exists() and not (tmp_path / "xdg").exists(), "nothing written"


def test_a_newline_in_home_is_refused(cron, tmp_path):
    env, table = cron
    cfg = toml_config(tmp_path / "opsbook.toml", str(tmp_path / "reports"))
    out = opsbook({**env, "HOME": f"{tmp_path}\n* * * * * touch {tmp_path}/pwned #"}, "schedule", "install",
                  "--systemd", "--user", config=cfg)
    assert out.returncode == 2 and "HOME" in out.stderr and "a newline" in out.stderr, out.stdout + out.stderr
    assert not (tmp_path / "xdg").exists()


# ------------------------------------------------------------------------------------------ escaped values
WEIRD = "50% \\%d 'q' \"d\" $HOME `touch pwned` $(touch pwned); #x ü"


def test_a_cron_line_with_hostile_but_legal_paths_runs_as_written(cron, tmp_path):
    """`%`, a backslash before `%`, quotes, `$`, backticks and `#` in the paths: cron's `%` rule and sh's
    quoting both hold, through a real sh."""
    env, table = cron
    reports = tmp_path / f"reports {WEIRD}"
    cfg = toml_config(tmp_path / f"cfg {WEIRD}" / "opsbook.toml", str(reports))
    out = opsbook(env, "schedule", "install", "--cron", config=cfg)
    assert out.returncode == 0, out.stderr
    (line,) = [c for c in table.read_text().splitlines() if MARKER in c]
    assert table.read_text().count("\n") == 1
    home = tmp_path / f"home {WEIRD}"
    ran = run_like_cron(line, cwd=tmp_path, OPSBOOK_HOME=str(home))
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    assert (reports / "schedule.log").is_file(), sorted(p.name for p in tmp_path.iterdir())
    assert not (tmp_path / "pwned").exists() and not (Path("/") / "pwned").exists()


def systemd_words(value: str) -> list[str]:
    """A unit's command line split as systemd.service(5) says: plain or double-quoted words, C escapes in the
    quoted ones; then `%%` is a `%` (specifiers) and `$$` a `$` (environment substitution)."""
    words, i = [], 0
    while i < len(value):
        if value[i] == " ":
            i += 1
            continue
        word = []
        if value[i] != '"':
            while i < len(value) and value[i] != " ":
                assert value[i] not in "\\\"'", f"a plain word with a quote or backslash: {value!r}"
                word.append(value[i])
                i += 1
        else:
            i += 1
            while value[i] != '"':
                if value[i] == "\\":
                    i += 1
                word.append(value[i])
                i += 1
            i += 1
        text = "".join(word)
        assert "%" not in text.replace("%%", "") and "$" not in text.replace("$$", ""), text
        words.append(text.replace("%%", "%").replace("$$", "$"))
    return words


def test_systemd_units_escape_percent_dollar_quotes_and_backslashes(cron, tmp_path):
    env, table = cron
    cfg = toml_config(tmp_path / f"cfg {WEIRD} %Z ${{X}}" / "opsbook.toml", str(tmp_path / "reports"))
    home = tmp_path / f"home {WEIRD} %Z"
    out = opsbook({**env, "HOME": str(home)}, "schedule", "install", "--systemd", "--user", config=cfg)
    assert out.returncode == 0, out.stderr
    units = tmp_path / "xdg" / "systemd" / "user"
    name = f"opsbook-schedule-{config_id(cfg)}"
    service = (units / f"{name}.service").read_text()
    (exec_start,) = [line[len("ExecStart="):] for line in service.splitlines() if line.startswith("ExecStart=")]
    assert systemd_words(exec_start) == [str(OPSBOOK), "--config", str(cfg), "schedule", "run-due"]
    (environment,) = [line[len("Environment="):] for line in service.splitlines()
                      if line.startswith("Environment=")]
    # Environment= expands specifiers but not variables: `%` doubled, `$` as is
    assert environment == '"HOME=' + str(home).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", "--man=no", "--generators=no",
                                 str(units / f"{name}.service"), str(units / f"{name}.timer")],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stderr  # an unescaped %Z is "Failed to resolve unit specifiers"


# ------------------------------------------------------------------------------------------ uninstall
def test_cron_uninstall_removes_all_install_wrote_and_only_that(cron, tmp_path):
    env, table = cron
    mine = "# my own jobs\n0 3 * * * /usr/local/bin/backup --to '/srv/b' # nightly\n"
    table.write_text(mine)
    cfg = toml_config(tmp_path / f"cfg {WEIRD}" / "opsbook.toml", str(tmp_path / f"reports {WEIRD}"))
    for _ in range(2):  # idempotent: one line however often installed
        assert opsbook(env, "schedule", "install", "--cron", config=cfg).returncode == 0
    assert sum(MARKER in c for c in table.read_text().splitlines()) == 1
    out = opsbook(env, "schedule", "uninstall", config=cfg)
    assert out.returncode == 0 and "removed" in out.stdout, out.stderr
    assert table.read_text() == mine
    assert "no opsbook line" in opsbook(env, "schedule", "uninstall", config=cfg).stdout


def legacy_line(reports_dir: str, config: Path) -> str:
    """The crontab entry an earlier opsbook wrote for a reports folder holding a newline (it did not refuse it)."""
    q = shlex.quote
    log = f"{reports_dir}/schedule.log"
    command = (f"mkdir -p {q(reports_dir)} && HOME={q('/root')} PATH={q('/usr/bin:/bin')} {q(str(OPSBOOK))} "
               f"--config {q(str(config))} schedule run-due >> {q(log)} 2>&1")
    return f"* * * * * {command.replace('%', chr(92) + '%')} {MARKER}"


def test_uninstall_removes_the_lines_an_earlier_install_injected(cron, tmp_path):
    env, table = cron
    pwned = tmp_path / "pwned"
    mine = "0 3 * * * /usr/local/bin/backup\n"
    cfg = toml_config(tmp_path / "opsbook.toml", str(tmp_path / "reports"))
    entry = legacy_line(f"{tmp_path}/x\n* * * * * touch {pwned} #", cfg)
    table.write_text(mine + entry + "\n" + "5 4 * * * /usr/local/bin/other\n")
    lines = table.read_text().splitlines()
    assert len(lines) == 5 and MARKER not in lines[2]  # control: the injected entry is a line of its own ...
    assert run_like_cron(lines[2], cwd=tmp_path).returncode == 0 and pwned.exists()  # ... that cron would run
    out = opsbook(env, "schedule", "uninstall", config=cfg)
    assert out.returncode == 0, out.stderr
    assert table.read_text() == mine + "5 4 * * * /usr/local/bin/other\n"


def test_systemd_uninstall_removes_units_leftovers_and_the_enable_link(cron, tmp_path):
    env, table = cron
    cfg = toml_config(tmp_path / "opsbook.toml", str(tmp_path / "reports"))
    assert opsbook(env, "schedule", "install", "--systemd", "--user", config=cfg).returncode == 0
    units = tmp_path / "xdg" / "systemd" / "user"
    # what `systemctl --user enable` adds, and a temporary file an interrupted install left
    name = f"opsbook-schedule-{config_id(cfg)}"
    (units / "timers.target.wants").mkdir()
    (units / "timers.target.wants" / f"{name}.timer").symlink_to(units / f"{name}.timer")
    (units / f".{name}.service.123.tmp").write_text("[Service]\n")
    (units / "other.service").write_text("[Service]\nExecStart=/bin/true\n")
    out = opsbook(env, "schedule", "uninstall", "--systemd", "--user", config=cfg)
    assert out.returncode == 0, out.stderr
    left = sorted(p.relative_to(units).as_posix() for p in units.rglob("*"))
    assert left == ["other.service", "timers.target.wants"], left
    assert "no opsbook units" in opsbook(env, "schedule", "uninstall", "--systemd", "--user", config=cfg).stdout


# ------------------------------------------------------------------------------------------ job rows
def test_a_forged_retry_row_never_runs_outside_its_schedule(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(FIXTURES))
    config = from_dict({"targets": {"test": {"dsn": "dbname=test"}, "prod": {"dsn": "dbname=prod"}},
                        "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"},
                        "reports": {"dir": str(tmp_path / "reports")},
                        "schedules": [{"name": "minutely", "runbook": "connect", "targets": ["test"],
                                       "cron": "* * * * *", "parameters": {"x": "1"}}]})
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    store = JobStore(config.history_url)
    try:
        with store.engine.begin() as conn:  # written by whoever can write the store, not by opsbook
            # another target (configured, or not at all); its own target with an attempt that retries forever
            for target, attempt in (("prod", 1), ("nowhere", 1), ("test", -50)):
                conn.execute(job_runs.insert().values(
                    schedule="minutely", target=target, slot=now.timestamp() - 60, attempt=attempt,
                    status="retrying", started_at=now.timestamp() - 60, next_retry_at=now.timestamp() - 1))
    finally:
        store.close()
    ran = []

    def record(runbook, target, params, **kw):  # stands for `opsbook run`: records what would run
        ran.append((runbook, target, params))
        return {"exit_code": 0, "result": {"status": "ok", "sidecar": None, "findings": []}}

    monkeypatch.setattr("opsbook.fleet.task.run_target", record)
    said = []
    outcomes = run_due(config, now=now, progress=said.append)
    assert ran == [("connect", "test", {"x": "1"})], ran  # the schedule's own slot on its own target
    assert [(o.target, o.status) for o in outcomes] == [("test", "ok")]
    assert sum("'prod'" in s and "ignored" in s for s in said) == 1, said
    assert sum("'nowhere'" in s and "ignored" in s for s in said) == 1, said
    assert sum("attempt -50" in s and "ignored" in s for s in said) == 1, said
    store = JobStore(config.history_url)
    try:
        rows = store.rows()
    finally:
        store.close()
    forged = [r for r in rows if r["slot"] != now.timestamp()]
    assert len(forged) == 3 and all(r["status"] == "failed" and r["error"].startswith("not run: ")
                                    for r in forged), forged  # closed: not looked at again every minute
    said.clear()
    assert run_due(config, now=now + dt.timedelta(seconds=30), progress=said.append) == [] and said == []
    assert len(ran) == 1
