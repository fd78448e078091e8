"""Bad input is exit 2, one line, before anything runs: parameters, configuration, folders, the history store."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsbook.cli import main as cli

EMPTY = Path(__file__).parent / "fixtures" / "runbooks"


def run_cli(*args: str, config: str | None = None, cwd: Path | None = None):
    """The CLI in-process; returns the click Result."""
    full = (["--config", config] if config else []) + list(args)
    return CliRunner().invoke(cli.main, full)


def assert_one_line_exit_2(result, *expected: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert result.stdout == "" and err.count("\n") == 1, err
    assert err.startswith("opsbook: error: ") and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


def nothing_written(root: Path) -> None:
    assert not root.exists() or not any(root.rglob("*.json")), "a failed report was written for bad input"


# ---------------------------------------------------------------------------------------------- parameters
BAD_PARAMS = [
    ("cost-analysis", "compute=huge", "parameter 'compute' must be one of nano, micro"),
    ("cost-analysis", "plan=team2", "parameter 'plan' must be one of free, pro, team"),
    ("cost-analysis", "plan=\uff50\uff52\uff4f", "got '\uff50\uff52\uff4f'"),  # full-width "pro"
    ("capacity-planning", "plan=\uff50\uff52\uff4f", "parameter 'plan' must be one of"),
    ("capacity-planning", "compute=Micro", "parameter 'compute' must be one of"),
    ("cost-analysis", "pitr_days=3", "parameter 'pitr_days' must be one of 0, 7, 14, 28, got 3"),
    ("cost-analysis", "spend_cap=maybe", "parameter 'spend_cap' expects bool | None, got 'maybe'"),
    ("cost-analysis", "plan=free&spend_cap=on", "spend_cap: the Free plan has no spend cap"),
    ("cost-analysis", "plan=free&pitr_days=7", "the Free plan has no add-ons, but pitr_days is set"),
    ("cost-analysis", "plan=free&compute=large", "the Free plan runs on the free compute size only"),
    ("cost-analysis", "egress_gb=-1", "parameter 'egress_gb' must be in [0, inf] (at least 0), got -1.0"),
    ("cost-analysis", "egress_gb=nan", "parameter 'egress_gb' expects float | None"),
    ("cost-analysis", "archive_days=-1", "parameter 'archive_days' must be in [1, 36500], got -1"),
    ("cost-analysis", "usage_csv=missing.csv", "parameter 'usage_csv': file missing.csv does not exist"),
    ("cost-analysis", "usage_csv=.", "parameter 'usage_csv': . is not a file"),
    ("cost-analysis", "archive_tables=leads,x;drop", "parameter 'archive_tables': 'x;drop' is not a table name"),
    ("backup-verification", "client_bindir=/nonexistent/bin", "folder /nonexistent/bin does not exist"),
    ("table-recovery", "client_bindir=/nonexistent/bin", "folder /nonexistent/bin does not exist"),
    ("table-recovery", "table=le'ads", "parameter 'table': \"le'ads\" is not a table name"),
    ("table-recovery", "table=leads;drop table x", "is not a table name"),
    ("table-recovery", 'table=public."a"b', "is not a table name"),
    ("table-recovery", "key=id;drop", "parameter 'key': 'id;drop' is not a column name"),
    ("table-recovery", "backup=/nonexistent/dump", "parameter 'backup': /nonexistent/dump does not exist"),
    ("incident-triage", 'freshness={"a\\u0000b": {"column": "x"}}', "parameter 'freshness' key: 'a\\x00b'"),
    ("incident-triage", 'freshness={"public.t": {"column": "x", "max_age_hours": -4}}', "max_age_hours must be"),
    ("incident-triage", 'freshness={"public.t": {"colum": "x"}}', "unknown key 'colum'"),
    ("capacity-planning", "horizon_days=-5", "parameter 'horizon_days' must be in [1, 3650], got -5"),
    ("capacity-planning", "window_days=0", "parameter 'window_days' must be in [1, 3650], got 0"),
    ("incident-triage", "window_minutes=-1", "parameter 'window_minutes' must be in [1, 10080], got -1"),
    ("incident-triage", "top_statements=-5", "parameter 'top_statements' must be in [1, 1000], got -5"),
    ("incident-triage", "top_statements=0", "got 0"),  # 0 no longer becomes 20 silently
    ("incident-triage", "terminate_pids=0,12", "parameter 'terminate_pids' must be in [1, 2147483647], got 0"),
    ("incident-triage", "statement_timeout_ms=0", "parameter 'statement_timeout_ms' must be in [100, 3600000]"),
    ("backup-verification", "statement_timeout_ms=0", "must be in [100, 3600000], got 0"),
    ("backup-verification", "jobs=100000", "parameter 'jobs' must be in [1, 32], got 100000"),
    ("backup-verification", "jobs=0", "parameter 'jobs' must be in [1, 32], got 0"),
    ("backup-verification", "rto_minutes=0", "parameter 'rto_minutes' must be in (0, 10080], got 0.0"),
    ("backup-verification", "rpo_hours=-1", "parameter 'rpo_hours' must be in (0, 8760]"),
    ("backup-verification", "dump_format=zip", "parameter 'dump_format' must be one of custom, directory, plain, tar"),
    ("table-recovery", "max_rows_shown=-1", "parameter 'max_rows_shown' must be in [0, 100000]"),
    ("post-mortem", "incident_start=yesterday", "parameter 'incident_start' 'yesterday' is not a time"),
    ("post-mortem", "incident_end=2026-11-21T22:40:00", "has no time zone"),
    ("post-mortem", "severity=P5", "parameter 'severity' must be one of P0, P1, P2, P3, got 'P5'"),
    ("post-mortem", "padding_minutes=-30", "parameter 'padding_minutes' must be in [0, 1440]"),
    ("monthly-health", "month=2026-13", "parameter 'month' must be a month as YYYY-MM"),
    ("security-audit", "window_hours=0", "parameter 'window_hours' must be in (0, 8760]"),
    ("incident-triage", 'thresholds={"activity.long_running": {"warning": -1}}', "must not be negative"),
    ("incident-triage", 'thresholds={"activity.long_running": {"warning": NaN}}', "must be a finite number"),
    ("incident-triage", 'thresholds={"activity.long_running": {"warning": 5000}}',
     "warning (5000) is above critical (1800)"),
    ("incident-triage", 'thresholds={"cache.hit_ratio": {"warning": 90}}', "warning (90) is below critical (94)"),
]


@pytest.mark.parametrize("runbook, assignment, message", BAD_PARAMS, ids=[f"{r}:{a}" for r, a, _ in BAD_PARAMS])
def test_out_of_bounds_parameters_are_refused_before_anything_runs(tmp_path, runbook, assignment, message):
    pairs = [x for a in assignment.split("&") for x in ("-p", a)] if "&" in assignment else ["-p", assignment]
    result = run_cli("run", runbook, *pairs, "--output-dir", str(tmp_path / "out"))
    assert_one_line_exit_2(result, message)
    assert not (tmp_path / "out").exists()


def test_values_inside_the_bounds_pass_validation(tmp_path):
    """The same validation accepts the edges: the bounds are not off by one."""
    from opsbook.config import params
    from opsbook.run import runner
    from opsbook.config.file import load

    (tmp_path / "usage.csv").write_text("date,metric,usage,unit\n")
    config = load()
    context = {"config": config, "target": config.target("demo")}
    cases = {"cost-analysis": {"plan": "team", "compute": "16xl", "pitr_days": "28", "spend_cap": "off",
                               "egress_gb": "0", "archive_days": "1", "usage_csv": "usage.csv",
                               "archive_tables": 'public.leads,"Odd Name"'},
             "capacity-planning": {"horizon_days": "3650", "window_days": "1"},
             "incident-triage": {"top_statements": "1", "window_minutes": "10080", "statement_timeout_ms": "100",
                                 "freshness": '{"public.t": {"column": "created_at", "max_age_hours": 0.5}}',
                                 "thresholds": '{"cache.hit_ratio": {"warning": 95}}'},
             "backup-verification": {"jobs": "32", "rto_minutes": "0.5", "dump_format": "tar",
                                     "client_bindir": str(tmp_path)},
             "table-recovery": {"table": "public.leads", "key": "id, email", "max_rows_shown": "0"}}
    for name, raw in cases.items():
        values = params.coerce(runner.describe(name), raw, context)
        assert set(values) == set(raw), name
    for name in runner.runbook_names():  # every runbook's defaults pass its own pre-run checks on the demo
        runner.check_run(name, "demo", {}, config=config)
    runner.check_run("cost-analysis", "demo", {"plan": "team", "pitr_days": "7", "spend_cap": "off"}, config=config)


def test_every_runbook_default_is_inside_its_own_bound():
    """Each parameters cell parses (bounds included) and its defaults obey them (parse checks it)."""
    from opsbook.run import runner

    bounded = {name: [p.name for p in runner.describe(name) if p.bound] for name in runner.runbook_names()}
    assert "statement_timeout_ms" in bounded["incident-triage"] and "jobs" in bounded["backup-verification"]
    for name in ("backup-verification", "capacity-planning", "incident-triage", "table-recovery"):
        timeouts = [p for p in runner.describe(name) if p.name == "statement_timeout_ms"]
        assert timeouts and timeouts[0].bound.low >= 100, name  # never 0: no query without a timeout
    for name in runner.runbook_names():  # a runbook added later declares its timeout the same way
        for p in runner.describe(name):
            if p.name.endswith("timeout_ms") or p.name in ("jobs", "rto_minutes"):
                assert p.bound is not None and (p.bound.low > 0 or p.bound.low_open), (name, p.name)


# ---------------------------------------------------------------------------------------------- configuration
BAD_CONFIG = [
    ('[targets.prod]\ndsn = "host=h"\nplann = "pro"\n', "unknown key 'plann' in [targets.prod] (did you mean 'plan'?)"),
    ('[targets.prod]\ndsn = "host=h"\nplan = "gold"\n', "targets.prod.plan 'gold' is not a plan of the price list"),
    ('[targets.prod]\ndsn = "host=h"\ncompute = "huge"\n', "targets.prod.compute 'huge' is not a compute size"),
    ('[targets.prod]\ndsn = "host=h"\nscratch = "yes"\n', "targets.prod.scratch must be true or false"),
    ('[targets.prod]\ndsn = "host=h"\ntags = "a"\n', "targets.prod.tags must be a list of strings"),
    ('[targets.prod]\ndsn = "host=h"\ndisk_gb = -8\n', "targets.prod.disk_gb must be a positive number"),
    ('[targets.prod]\ndsn = "host=h"\n[targets.prod.limits]\nmax_connection = 9\n', "unknown limit 'max_connection'"),
    ('[targets.prod]\ndsn = "host=h"\n[targets.prod.limits]\nmau = 0\n', "limits.mau must be a positive number"),
    ('[targets.prod]\ndsn = "host=h"\n[targets.prod.addons]\npitr_days = 3\n', "pitr_days must be one of 0, 7"),
    ('[targets.prod]\ndsn = "host=h"\n[targets.prod.addons]\nread_replicas = -1\n', "must be 0 or more"),
    ('[targets.prod]\ndsn_env = "MY DSN"\n', "must name an environment variable"),
    ('[targets.prod]\ndsn = "host=h"\n[targets.prod.freshness."a\\u0000b"]\ncolumn = "x"\n', "is not a table name"),
    ('[history]\nurl = "mysql://u@localhost/opsbook"\n', "uses mysql://, whose driver is not installed here"),
    ('[history]\nurl = "oracle://u@localhost/opsbook"\n', "uses oracle://, whose driver is not installed here"),
    ('[history]\nurl = "sqlite:////nonexistent/dir/history.sqlite"\n', "folder /nonexistent/dir does not exist"),
    ('[history]\nurll = "sqlite:///h.sqlite"\n', "unknown key 'urll' in [history]"),
    ('[histroy]\nurl = "sqlite:///h.sqlite"\n', "unknown section or key 'histroy'"),
]

BAD_THRESHOLDS = [
    ('[thresholds."activity.long_running"]\nwarning = nan\n', "must be a finite number"),
    ('[thresholds."activity.long_running"]\nwarning = inf\n', "must be a finite number"),
    ('[thresholds."activity.long_running"]\nwarning = -5\n', "must not be negative"),
    ('[thresholds."activity.long_running"]\nwarning = 2000\ncritical = 1000\n', "warning (2000) is above critical"),
    ('[targets.demo.thresholds."cache.hit_ratio"]\nwarning = 80\n', "warning (80) is below critical (94)"),
    ('[thresholds."replication.slots"]\nwarning_bytes = 20000000000\n', "warning_bytes (20000000000) is above"),
]


@pytest.mark.parametrize("text, message", BAD_THRESHOLDS, ids=[m for _, m in BAD_THRESHOLDS])
def test_bad_thresholds_in_the_configuration_are_refused_before_the_run(tmp_path, text, message):
    from opsbook.config.file import load
    from opsbook.core.errors import ParameterError, UsageError
    from opsbook.run.runner import run_runbook

    (tmp_path / "opsbook.toml").write_text(text)
    # thresholds are checked before --fail-on: a bad --fail-on shows that the thresholds passed, and runs nothing
    with pytest.raises(UsageError) as e:
        run_runbook("incident-triage", "demo", config=load(), output_dir=tmp_path / "out", fail_on="bogus")
    assert isinstance(e.value, ParameterError) and message in str(e.value), e.value
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", BAD_CONFIG, ids=[m for _, m in BAD_CONFIG])
def test_bad_configuration_is_refused_before_anything_runs(tmp_path, text, message):
    (tmp_path / "opsbook.toml").write_text(text + '[reports]\ndir = "out"\n')
    result = run_cli("run", "incident-triage", "--target", "nowhere")  # if the config passed: exit 2 all the same
    assert_one_line_exit_2(result, message)
    assert not (tmp_path / "out").exists()
    assert not (Path("/nonexistent")).exists()


def test_keys_other_features_read_are_accepted(tmp_path):
    from opsbook.config.file import load

    (tmp_path / "dumps").mkdir()
    (tmp_path / "opsbook.toml").write_text('''
[targets.prod]
dsn = "host=db.example.com dbname=app"
plan = "team"
compute = "large"
scratch = true
api_schemas = ["public", "api"]
tags = ["eu", "tier-1"]
backups = "dumps"
log_path = "/var/log/postgresql"
usage_csv = "usage.csv"
spend_cap = false
disk_gb = 16
[targets.prod.addons]
pitr_days = 7
ipv4 = true
[targets.prod.limits]
database_size_bytes = 8e9
max_connections = 90
[targets.prod.pricing.compute.large]
usd_hour = 0.15
[targets.prod.freshness."public.events"]
column = "created_at"
max_age_hours = 4
[[schedules]]
name = "nightly"
runbook = "capacity-planning"
[notify]
report_url_prefix = "https://reports.example.com/"
[notify.ops]
kind = "webhook"
''')
    config = load()
    prod = config.target("prod")
    assert prod.extra["scratch"] is True and prod.extra["tags"] == ["eu", "tier-1"]
    assert prod.extra["backups"] == str(tmp_path / "dumps")  # relative to the file's folder
    assert prod.extra["usage_csv"] == str(tmp_path / "usage.csv")
    assert prod.extra["log_path"] == "/var/log/postgresql"


def test_two_targets_for_one_run_is_refused(tmp_path):
    (tmp_path / "opsbook.toml").write_text('[targets.a]\ndsn = "host=a"\n[targets.b]\ndsn = "host=b"\n')
    result = run_cli("run", "incident-triage", "--target", "a", "--target", "b")
    assert_one_line_exit_2(result, "--target given 2 times (a, b)", "opsbook fleet RUNBOOK --targets a,b")


# ---------------------------------------------------------------------------------------------- folders
def test_unwritable_output_dir_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    result = run_cli("run", "incident-triage", "--output-dir", str(tmp_path / "afile" / "reports"))
    assert_one_line_exit_2(result, "--output-dir", "is not a writable folder (Not a directory)")


def test_unwritable_reports_dir_of_the_config_is_one_line(tmp_path):
    (tmp_path / "opsbook.toml").write_text('[reports]\ndir = "/proc/opsbook-reports"\n')
    result = run_cli("run", "incident-triage")
    assert_one_line_exit_2(result, "the reports folder /proc/opsbook-reports is not a writable folder")


def test_unwritable_reports_dir_in_a_real_process_has_no_traceback(tmp_path):
    (tmp_path / "opsbook.toml").write_text('[reports]\ndir = "/proc/opsbook-reports"\n')
    p = subprocess.run([sys.executable, "-m", "opsbook.cli", "run", "incident-triage"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1, p.stderr
    assert "Traceback" not in p.stderr and "not a writable folder" in p.stderr


# ---------------------------------------------------------------------------------------------- history store
@pytest.fixture
def snapshot_config(db, tmp_path):
    store = tmp_path / "history" / "h.sqlite"
    store.parent.mkdir()
    (tmp_path / "opsbook.toml").write_text(f'[targets.test]\ndsn = "{db.conninfo}"\n'
                                           f'[history]\nurl = "sqlite:///{store}"\n')
    return store


def test_a_locked_store_waits_retries_then_says_one_line(snapshot_config, monkeypatch):
    from opsbook import history
    from opsbook.history import store as st

    assert run_cli("snapshot", "--target", "test").exit_code == 0  # the store exists, with one snapshot
    monkeypatch.setattr(st, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(history, "RETRY_PAUSE_S", 0.05)
    holder = sqlite3.connect(snapshot_config, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction: the write lock is taken
    try:
        result = run_cli("snapshot", "--target", "test")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_line_exit_2(result, f"history store {snapshot_config} is locked by another process",
                           "3 attempts")


def test_a_store_released_during_the_retries_is_written(snapshot_config, monkeypatch):
    from opsbook import history
    from opsbook.history import store as st

    assert run_cli("snapshot", "--target", "test").exit_code == 0
    monkeypatch.setattr(st, "BUSY_TIMEOUT_MS", 300)
    monkeypatch.setattr(history, "RETRY_PAUSE_S", 0.3)
    holder = sqlite3.connect(snapshot_config, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        result = run_cli("snapshot", "--target", "test")
    finally:
        release.join()
        holder.close()
    assert result.exit_code == 0, result.output
    assert "test: snapshot 2" in result.output


def test_the_history_store_is_created_private(db, tmp_path):
    (tmp_path / "opsbook.toml").write_text(f'[targets.test]\ndsn = "{db.conninfo}"\n[reports]\ndir = "new/reports"\n')
    result = run_cli("snapshot", "--target", "test")
    assert result.exit_code == 0, result.output
    store = tmp_path / "new" / "reports" / "history.sqlite"
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    assert oct(store.parent.stat().st_mode & 0o777) == "0o700"
    for extra in store.parent.glob("history.sqlite-*"):  # -wal, -shm: same mode as the file
        assert extra.stat().st_mode & 0o077 == 0, extra


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MB filesystem (tmpfs), to fill up."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_under_the_store_is_one_line(db, tmp_path, tiny_disk):
    db.execute("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 10) g")
    (tmp_path / "opsbook.toml").write_text(f'[targets.test]\ndsn = "{db.conninfo}"\n'
                                           f'[history]\nurl = "sqlite:///{tiny_disk}/h.sqlite"\n')
    filler = tiny_disk / "filler"
    with open(filler, "wb") as f:  # leave a few kB: enough to create the store, not to write a snapshot
        try:
            f.write(b"\0" * (1024 * 1024))
        except OSError:
            pass
    os.truncate(filler, max(filler.stat().st_size - 40 * 1024, 0))
    result = run_cli("snapshot", "--target", "test")
    assert_one_line_exit_2(result, "history store", "full")


@pytest.mark.slow
def test_a_full_disk_under_the_reports_is_one_line_and_leaves_no_tmp(tmp_path, tiny_disk):
    """The shared plotly.js (4.7 MB) cannot fit on 1 MB: one line, exit 2, and no .tmp file keeps the disk full."""
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(EMPTY)}
    env.pop("OPSBOOK_CONFIG", None)
    p = subprocess.run([sys.executable, "-m", "opsbook.cli", "run", "chart", "--output-dir", str(tiny_disk)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "Traceback" not in p.stderr and "No space left on device" in p.stderr, p.stderr
    assert not [f for f in tiny_disk.rglob("*") if f.name.endswith(".tmp")]


def test_two_processes_creating_the_store_at_once_both_succeed(tmp_path):
    """The store file exists (private) before its schema: a second opener racing the first must not fail with
    "table already exists"; open_store tries again and finds the schema made."""
    from opsbook.config.file import from_dict
    from opsbook.history import open_store

    config = from_dict({"history": {"url": f"sqlite:///{tmp_path / 'h.sqlite'}"}})
    code = ("import sys; from opsbook.config.file import from_dict; from opsbook.history import open_store; "
            f"open_store(from_dict({{'history': {{'url': 'sqlite:///{tmp_path / 'h.sqlite'}'}}}})).close()")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    store = open_store(config)
    assert store.version >= 1
    store.close()


def test_a_post_mortem_window_that_ends_before_it_starts_is_exit_2(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([str(Path(sys.executable).parent / "opsbook"), "run", "post-mortem",
                          "-p", "incident_start=2026-12-01T10:00:00Z", "-p", "incident_end=2026-12-01T09:00:00Z"],
                         capture_output=True, text=True, cwd=tmp_path, env={**__import__("os").environ,
                                                                             "OPSBOOK_HOME": str(tmp_path)})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == ("opsbook: error: incident_end (2026-12-01 09:00:00Z) must be after incident_start "
                                  "(2026-12-01 10:00:00Z)")
    assert not (tmp_path / "reports").exists()  # nothing ran, no failed report
