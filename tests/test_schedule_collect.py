"""`schedule install` installs the history collection with the reports (the snapshot line, run as cron runs it,
stores a snapshot in a PostgreSQL history store; `watch` when configured), each configuration gets timers of its
own (two side by side, each uninstall removes only its own, an earlier unnamed install is migrated), system units
run as a named account (never silently root) and `--user` installs say whether linger keeps them running."""
from __future__ import annotations

import json
import os
import pwd
import grp
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import drop_database, make_database
from test_schedule_hostile import FAKE_CRONTAB, cron_command, legacy_line
from opsbook.config.file import from_dict
from opsbook.schedule.install import MARKER
from opsbook.schedule.timers import config_id

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
OPSBOOK = Path(sys.executable).parent / "opsbook"


@pytest.fixture
def box(tmp_path):
    """(environment for opsbook, crontab file, HOME): a `crontab` and a `loginctl` on PATH that answer from
    tmp_path (cron and logind do not run here), HOME and XDG_CONFIG_HOME in tmp_path."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "crontab").write_text(FAKE_CRONTAB)
    (bindir / "crontab").chmod(0o755)
    (bindir / "loginctl").write_text('#!/bin/sh\n[ -f "$OB_LINGER" ] || exit 1\ncat "$OB_LINGER"\n')
    (bindir / "loginctl").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("OPSBOOK_CONFIG", "SUDO_USER")}
    env.update({"OPSBOOK_RUNBOOKS": str(FIXTURES), "OB_CRONTAB_FILE": str(tmp_path / "crontab.txt"),
                "HOME": str(home), "PATH": f"{bindir}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
                "OB_LINGER": str(tmp_path / "linger")})
    return env, tmp_path / "crontab.txt", home


@pytest.fixture
def pg_store(pg):
    """A database on the embedded server holding the history, as a team's shared store would."""
    d = make_database(pg)
    yield f"postgresql+psycopg://postgres@/{d.name}?host={pg.data_dir}&port={pg.configured_port()}"
    drop_database(d)


def write_config(path: Path, *, dsn: str = "host=127.0.0.1 port=1 dbname=x connect_timeout=1", history: dict | None
                 = None, schedules: bool = True, dsn_key: str = "dsn") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (f"[targets.test]\n{dsn_key} = {json.dumps(dsn)}\n"
            f"[reports]\ndir = {json.dumps(str(path.parent / 'reports'))}\n")
    if history:
        text += "[history]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in history.items())
    if schedules:
        text += '[[schedules]]\nname = "m"\nrunbook = "connect"\ntargets = ["test"]\ncron = "0 6 1 * *"\n'
    path.write_text(text)
    return path


def opsbook(env, cfg: Path | None, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(OPSBOOK), *(["--config", str(cfg)] if cfg else []), *args], capture_output=True,
                          text=True, env=env, timeout=240)


def like_cron(line: str, home: Path, env) -> subprocess.CompletedProcess:
    """The crontab line's command as cron runs it: /bin/sh in a bare environment (env -i) of HOME and PATH."""
    return subprocess.run(["env", "-i", f"HOME={home}", f"PATH={env['PATH']}", f"OPSBOOK_RUNBOOKS={FIXTURES}",
                           "sh", "-c", cron_command(line)], capture_output=True, text=True, cwd=home, timeout=240)


def ours(table: Path) -> list[str]:
    return [line for line in table.read_text().splitlines() if "managed by `opsbook schedule install`" in line]


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr


# ------------------------------------------------------------------------------------------ history collection
def test_the_installed_snapshot_line_run_as_cron_fills_the_postgresql_history_store(box, tmp_path, db, pg_store):
    """The target's DSN comes from the environment (dsn_env): the install copies it into the env file, as cron
    hands the line nothing of the installing shell."""
    env, table, home = box
    db.execute("CREATE TABLE public.t (id bigint PRIMARY KEY); INSERT INTO public.t SELECT generate_series(1, 100)")
    cfg = write_config(tmp_path / "opsbook.toml", dsn="OB_TEST_DSN", dsn_key="dsn_env",
                       history={"url": pg_store, "snapshot_every": "5m"})
    err = one_line_error(opsbook(env, cfg, "schedule", "install", "--cron"))
    assert "target 'test': dsn_env names OB_TEST_DSN, which is not set in this shell" in err and not table.exists()
    out = opsbook({**env, "OB_TEST_DSN": db.conninfo}, cfg, "schedule", "install", "--cron")
    assert out.returncode == 0, out.stderr
    assert db.conninfo not in out.stdout and "OB_TEST_DSN from this shell" in out.stdout, out.stdout
    (snap,) = [line for line in ours(table) if "# opsbook snapshot " in line]
    assert snap.startswith("*/5 * * * * ") and f"--config {cfg} snapshot --all >> " in snap, snap
    from opsbook.history import open_store

    store = open_store(from_dict({"history": {"url": pg_store}}))
    try:
        assert store.targets() == []  # control: nothing before the timer ran
        ran = like_cron(snap, home, env)
        assert ran.returncode == 0 and ran.stderr == "", ran.stderr
        assert store.targets() == ["test"] and len(store.snapshots("test")) == 1
        assert len(store.series("test", "database_size_bytes")) == 1
    finally:
        store.close()
    log = (tmp_path / "reports" / "history.log").read_text()
    assert "test:" in log, log  # the snapshot's line went to the history log


@pytest.mark.parametrize("history, schedules, expect", [
    ({}, True, "*/15 * * * * "),  # the default with schedules: the monthly headlines need it
    ({"snapshot_every": "2h"}, True, "0 */2 * * * "),
    ({"snapshot_every": "1d"}, False, "0 0 * * * "),  # asked for without schedules
    ({}, False, None),  # no schedule reads it: not installed
    ({"snapshot_every": "off"}, True, None),
])
def test_snapshot_interval_from_the_configuration(box, tmp_path, history, schedules, expect):
    env, table, _ = box
    cfg = write_config(tmp_path / "opsbook.toml", history=history, schedules=schedules)
    out = opsbook(env, cfg, "schedule", "install", "--cron")
    assert out.returncode == 0, out.stderr
    snaps = [line for line in ours(table) if "# opsbook snapshot " in line]
    assert [s[:len(expect)] for s in snaps] == ([expect] if expect else []), snaps


@pytest.mark.parametrize("key, value, says", [
    ("snapshot_every", "7m", "give minutes that divide an hour"), ("snapshot_every", "90s", "1d, or \"off\""),
    ("snapshot_every", "often", "snapshot_every = 'often'"), ("watch_every", "2h", "from 1s to 10m"),
    ("snapshot_every", 15, "history.snapshot_every must be a string")])
def test_a_bad_interval_is_one_line_exit_2_and_nothing_installed(box, tmp_path, key, value, says):
    env, table, _ = box
    cfg = write_config(tmp_path / "opsbook.toml", history={key: value})
    for how in (["--cron"], ["--systemd", "--user"], ["--cron", "--dry-run"]):
        err = one_line_error(opsbook(env, cfg, "schedule", "install", *how))
        assert says in err, err
    assert not table.exists() and not (tmp_path / "xdg").exists()


def test_watch_when_configured_and_systemd_units_of_their_own(box, tmp_path):
    env, table, _ = box
    cfg = write_config(tmp_path / "opsbook.toml", history={"watch_every": "10s"})
    assert opsbook(env, cfg, "schedule", "install", "--cron").returncode == 0
    (watch,) = [line for line in ours(table) if "# opsbook watch " in line]
    assert watch.startswith("0 * * * * ") and "watch --all --every 10s --for 3590s >> " in watch
    out = opsbook(env, cfg, "schedule", "install", "--systemd", "--user")
    assert out.returncode == 0, out.stderr
    cid = config_id(cfg)
    units = tmp_path / "xdg" / "systemd" / "user"
    assert sorted(p.name for p in units.iterdir()) == [
        f"opsbook-schedule-{cid}.service", f"opsbook-schedule-{cid}.timer", f"opsbook-snapshot-{cid}.service",
        f"opsbook-snapshot-{cid}.timer", f"opsbook-watch-{cid}.service"]
    snapshot = (units / f"opsbook-snapshot-{cid}.service").read_text()
    assert f"ExecStart={OPSBOOK} --config {cfg} snapshot --all\n" in snapshot and "Type=oneshot" in snapshot
    assert "OnCalendar=*-*-* *:00/15:00\n" in (units / f"opsbook-snapshot-{cid}.timer").read_text()
    watch_unit = (units / f"opsbook-watch-{cid}.service").read_text()
    assert "Restart=always" in watch_unit and "WantedBy=default.target" in watch_unit
    assert f"enable --now opsbook-schedule-{cid}.timer opsbook-snapshot-{cid}.timer opsbook-watch-{cid}.service" \
        in out.stdout
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", "--man=no", "--generators=no",
                                 *map(str, sorted(units.iterdir()))], capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    # the configuration drops watch: reinstalling removes its unit (and the cron line)
    write_config(cfg)
    assert opsbook(env, cfg, "schedule", "install", "--systemd", "--user").returncode == 0
    assert not (units / f"opsbook-watch-{cid}.service").exists() and (units / f"opsbook-snapshot-{cid}.timer").exists()
    assert opsbook(env, cfg, "schedule", "install", "--cron").returncode == 0
    assert [line.split(" # opsbook ")[1].split(" (")[0] for line in ours(table)] == ["schedule run-due", "snapshot"]


def test_watch_all_samples_the_configured_targets_not_the_demo(db, tmp_path):
    """The installed `watch --all` means what `snapshot --all` means: the configuration's targets (the built-in
    demo only when named or alone), so a timer never starts the embedded demo server by itself."""
    cfg = write_config(tmp_path / "opsbook.toml", dsn=db.conninfo,
                       history={"url": f"sqlite:///{tmp_path / 'h.sqlite'}"}, schedules=False)
    out = opsbook({**os.environ}, cfg, "watch", "--all", "--every", "0.2s", "--for", "0.3s")
    assert out.returncode == 0, out.stderr
    assert "watching test every 0.2s" in out.stdout, out.stdout


# ------------------------------------------------------------------------------------------ two configurations
def test_two_configurations_side_by_side_each_uninstall_removes_only_its_own(box, tmp_path):
    env, table, _ = box
    mine = "0 3 * * * /usr/local/bin/backup\n"
    table.write_text(mine)
    a = write_config(tmp_path / "a" / "opsbook.toml")
    b = write_config(tmp_path / "b" / "opsbook.toml")
    assert config_id(a) != config_id(b) and re.fullmatch(r"[0-9a-f]{8}", config_id(a))
    for cfg in (a, b, a):  # installing a again changes nothing
        for how in (["--cron"], ["--systemd", "--user"]):
            out = opsbook(env, cfg, "schedule", "install", *how)
            assert out.returncode == 0, out.stderr
    lines = ours(table)
    assert len(lines) == 4 and sum(f"--config {a} " in x for x in lines) == 2, lines
    assert sum(f"# id {config_id(b)} #" in x and f"--config {b} " in x for x in lines) == 2, lines
    units = tmp_path / "xdg" / "systemd" / "user"
    assert len(list(units.iterdir())) == 8

    out = opsbook(env, a, "schedule", "uninstall")
    assert out.returncode == 0 and "removed" in out.stdout, out.stderr
    assert "2 crontab line(s) of other configurations left in place" in out.stdout, out.stdout
    assert table.read_text() == mine + "".join(f"{x}\n" for x in lines if f"--config {b} " in x)
    out = opsbook(env, a, "schedule", "uninstall", "--systemd", "--user")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in units.iterdir()) == sorted(
        f"opsbook-{j}-{config_id(b)}.{k}" for j in ("schedule", "snapshot") for k in ("service", "timer"))
    assert "no opsbook line" in opsbook(env, a, "schedule", "uninstall").stdout
    assert opsbook(env, b, "schedule", "uninstall").returncode == 0
    assert opsbook(env, b, "schedule", "uninstall", "--systemd", "--user").returncode == 0
    assert table.read_text() == mine and list(units.iterdir()) == []


def test_uninstall_all_removes_every_configuration(box, tmp_path):
    env, table, _ = box
    for name in ("a", "b"):
        assert opsbook(env, write_config(tmp_path / name / "opsbook.toml"), "schedule", "install", "--cron"
                       ).returncode == 0
    assert len(ours(table)) == 4
    out = opsbook(env, None, "schedule", "uninstall", "--all")
    assert out.returncode == 0 and ours(table) == [], out.stdout + out.stderr


def test_an_earlier_unnamed_cron_line_is_migrated_by_its_configuration_only(box, tmp_path):
    env, table, _ = box
    a = write_config(tmp_path / "a" / "opsbook.toml")
    b = write_config(tmp_path / "b" / "opsbook.toml")
    old_a, old_b = legacy_line(str(tmp_path / "a" / "reports"), a), legacy_line(str(tmp_path / "b" / "reports"), b)
    assert old_a.endswith(f" {MARKER}") and "# id " not in old_a  # control: the earlier naming
    envdir = tmp_path / "xdg" / "opsbook"
    envdir.mkdir(parents=True)
    (envdir / "schedule-cron.env").write_text("# an earlier install's\n")
    table.write_text(f"{old_b}\n")
    assert opsbook(env, a, "schedule", "install", "--cron").returncode == 0
    assert old_b in table.read_text().splitlines(), "another configuration's earlier line is left alone"
    table.write_text(f"{old_a}\n")
    out = opsbook(env, a, "schedule", "install", "--cron")
    assert out.returncode == 0 and "migrated" in out.stdout, out.stdout + out.stderr
    assert old_a not in table.read_text() and len(ours(table)) == 2
    assert not (envdir / "schedule-cron.env").exists()
    table.write_text(f"{old_b}\n")
    assert opsbook(env, b, "schedule", "uninstall").returncode == 0 and table.read_text() == ""


def test_an_earlier_unnamed_systemd_unit_is_migrated(box, tmp_path):
    env, _, _ = box
    a = write_config(tmp_path / "a" / "opsbook.toml")
    b = write_config(tmp_path / "b" / "opsbook.toml")
    units = tmp_path / "xdg" / "systemd" / "user"
    units.mkdir(parents=True)

    def earlier(cfg):
        (units / "opsbook-schedule.service").write_text(
            f"[Service]\nType=oneshot\nExecStart={OPSBOOK} --config {cfg} schedule run-due\n")
        (units / "opsbook-schedule.timer").write_text("[Timer]\nOnCalendar=*-*-* *:*:00\n")

    earlier(b)
    assert opsbook(env, a, "schedule", "install", "--systemd", "--user").returncode == 0
    assert (units / "opsbook-schedule.service").exists(), "another configuration's earlier unit is left alone"
    earlier(a)
    out = opsbook(env, a, "schedule", "install", "--systemd", "--user")
    assert out.returncode == 0 and "migrated" in out.stdout, out.stdout + out.stderr
    assert not (units / "opsbook-schedule.service").exists() and not (units / "opsbook-schedule.timer").exists()
    assert (units / f"opsbook-schedule-{config_id(a)}.timer").exists()


# ------------------------------------------------------------------------------------------ who runs them
def dry_run_units(out: str) -> dict[str, str]:
    """{file name: text} of the units `install --systemd --dry-run` printed."""
    parts = re.split(r"^# (/\S+) \(not written: --dry-run\)\n", out, flags=re.M)
    return {Path(parts[i]).name: parts[i + 1].split("\n# ")[0] for i in range(1, len(parts), 2)}


def test_system_units_run_as_the_installing_user_or_run_as(box, tmp_path):
    env, _, _ = box
    cfg = write_config(tmp_path / "opsbook.toml")
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    out = opsbook(env, cfg, "schedule", "install", "--systemd", "--dry-run", "--run-as", "nobody")
    assert out.returncode == 0, out.stderr
    units = dry_run_units(out.stdout)
    services = [t for n, t in units.items() if n.endswith(".service")]
    assert len(services) == 2 and len(units) == 4, list(units)
    for text in services:
        assert "\nUser=nobody\n" in text and f"\nGroup={group}\n" in text, text
        assert f"Environment=HOME={nobody.pw_dir}\n" in text
    if shutil.which("systemd-analyze"):
        folder = tmp_path / "system"
        folder.mkdir()
        for name, text in units.items():
            (folder / name).write_text(text)
        verify = subprocess.run(["systemd-analyze", "verify", "--man=no", "--generators=no",
                                 *map(str, sorted(folder.iterdir()))], capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    # by default, the installing user: the one behind sudo when root installs
    if os.geteuid() == 0:
        out = opsbook({**env, "SUDO_USER": "nobody"}, cfg, "schedule", "install", "--systemd", "--dry-run")
        assert out.returncode == 0 and "\nUser=nobody\n" in out.stdout, out.stderr
        err = one_line_error(opsbook(env, cfg, "schedule", "install", "--systemd", "--dry-run"))
        assert "would run opsbook as root: give --run-as USER" in err, err
        out = opsbook(env, cfg, "schedule", "install", "--systemd", "--dry-run", "--run-as", "root")
        assert out.returncode == 0 and "\nUser=root\n" in out.stdout, out.stderr
        assert "warning: the system units run opsbook as root" in out.stderr
    else:
        me = pwd.getpwuid(os.geteuid()).pw_name
        out = opsbook(env, cfg, "schedule", "install", "--systemd", "--dry-run")
        assert out.returncode == 0 and f"\nUser={me}\n" in out.stdout, out.stderr
    assert "no such user" in one_line_error(opsbook(env, cfg, "schedule", "install", "--systemd", "--dry-run",
                                                    "--run-as", "no-such-user-here"))
    assert "--run-as is for system units" in one_line_error(
        opsbook(env, cfg, "schedule", "install", "--systemd", "--user", "--run-as", "nobody"))


@pytest.mark.parametrize("answer, says", [("yes\n", "linger is on for {u}"), ("no\n", "linger is off for {u} now"),
                                          (None, "run only while {u} is logged in")])
def test_user_units_say_whether_linger_keeps_them_running(box, tmp_path, answer, says):
    env, _, _ = box
    if answer is not None:
        (tmp_path / "linger").write_text(answer)
    cfg = write_config(tmp_path / "opsbook.toml")
    out = opsbook(env, cfg, "schedule", "install", "--systemd", "--user")
    assert out.returncode == 0, out.stderr
    user = pwd.getpwuid(os.getuid()).pw_name
    assert says.format(u=user) in out.stdout, out.stdout
    if answer != "yes\n":
        assert f"`loginctl enable-linger {user}`" in out.stdout and "only while" in out.stdout, out.stdout
