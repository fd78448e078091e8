"""The support matrix (issue 21): every runbook, `snapshot` and `watch` on PostgreSQL 13 to 18, as a superuser, as
Supabase's non-superuser `postgres`, as a pg_monitor-only role, on a hot standby and on a SQL_ASCII database.

In every cell no check errors, nothing crashes, partial visibility is a finding (never "ok"), a verdict says when
the result is incomplete, and the pass writes no ERROR line into the server's log. `make test` takes the whole
cross product (about 4 min on 2 cores); OPSBOOK_MATRIX_FULL=0 takes a slice for a quicker local run (each version as
a superuser; 15 and 18 in every set-up). Each version's servers start once per session; the runbooks of every cell run on two worker
processes (kernels.many). OPSBOOK_MATRIX_REPORT=FILE writes what was measured as JSON (docs/support-matrix.md)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import deployments
import pgversions
from deployments import SETUPS, SUPABASE_ADMIN, Deployment
from opsbook.config.file import from_dict
from opsbook.core.findings import NOT_JUDGED, PARTIAL, TIMED_OUT
from opsbook.run.runner import runbook_meta, runbook_names

pytestmark = pytest.mark.slow

FULL = os.environ.get("OPSBOOK_MATRIX_FULL", "1") != "0"
SLICE = {(v, "superuser") for v in pgversions.VERSIONS} | {(v, s) for v in (15, 18) for s in SETUPS}
CELLS = [(v, s) for v in pgversions.VERSIONS for s in SETUPS if FULL or (v, s) in SLICE]
WORKERS = 2  # CI's cores
RUN_TIMEOUT_S = 300  # one runbook on one cell; a run past it is a failure of that cell, not a hung suite
ERROR_LINE = re.compile(r"db=(?P<db>\S*) user=(?P<user>\S*) app=.*?\b(?P<level>ERROR|FATAL|PANIC):  (?P<msg>.*)")
BIN = Path(sys.executable).parent


def target_name(version: int, setup: str) -> str:
    return f"pg{version}-{setup.replace('_', '-')}"


def build(version: int, bindir: Path, setups: set[str]) -> tuple[list, dict[str, Deployment]]:
    """The servers of one version and the deployments on them: (servers, {set-up: Deployment})."""
    servers, made = [], {}
    if setups & {"superuser", "monitor", "standby", "sql_ascii"}:
        primary = deployments.cluster(bindir, f"matrix-{version}")
        servers.append(primary)
        shaped = deployments.superuser(primary)
        made["superuser"] = shaped
        if "monitor" in setups:
            made["monitor"] = deployments.pg_monitor_only(primary, shaped.database)
        if "sql_ascii" in setups:
            made["sql_ascii"] = deployments.sql_ascii(primary)
        if "standby" in setups:
            made["standby"] = deployments.hot_standby(primary, shaped.database)
            servers.append(made["standby"].server)
    if "supabase" in setups:
        platform = deployments.cluster(bindir, f"matrix-{version}-supabase", superuser=SUPABASE_ADMIN)
        servers.append(platform)
        made["supabase"] = deployments.supabase_postgres(platform)
    return servers, {s: d for s, d in made.items() if s in setups}


def dump(d: Deployment, folder: Path) -> Path:
    """A custom-format dump of the deployment's database, by the superuser, with the server's own pg_dump where
    the machine has one (Debian's 15), else the embedded 18 (npm's builds carry no client tools)."""
    server = d.database.server
    own = server.bindir / "pg_dump"
    client = own if own.exists() else deployments.embedded_bindir() / "pg_dump"
    path = folder / f"{d.dbname}.dump"
    if not path.exists():
        out = subprocess.run([str(client), "-Fc", "-f", str(path), "-d", d.database.conninfo],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    return path


def params_for(runbook: str, d: Deployment, backup: Path) -> dict:
    return {"backup-verification": {"take_backup": True},
            "table-recovery": {"backup": str(backup), "table": "public.leads"},
            "post-mortem": {"incident_start": "now-10m", "log_path": str(d.server.log_file)},
            }.get(runbook, {})


def log_errors(path: Path, offset: int) -> list[tuple[str, str, str]]:
    """(db, user, line) of each ERROR/FATAL/PANIC line written after `offset`, with its STATEMENT."""
    with open(path, "rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    out = []
    for i, line in enumerate(lines):
        m = ERROR_LINE.search(line)
        if m:
            statement = lines[i + 1] if i + 1 < len(lines) and "STATEMENT:" in lines[i + 1] else ""
            out.append((m["db"], m["user"], f"{m['level']}: {m['msg']} {' '.join(statement.split())[:200]}".strip()))
    return out


def cli(config_file: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run([str(BIN / "opsbook"), "--config", str(config_file), *args], capture_output=True,
                          text=True, env=env, timeout=300)


def short_watch(config, names: list[str]) -> dict:
    """`opsbook watch` over the cells' targets for two seconds, in-process (`watch --all` would also sample, and
    so build, the built-in demo target): {"lines": what it said, "samples": {target: sample rows}}."""
    from opsbook.history import open_store
    from opsbook.incident.watch import Watcher, read_samples

    lines: list[str] = []
    started = time.time()
    store = open_store(config)
    try:
        Watcher(config, names, store=store, every_s=0.5, for_s=2, echo=lines.append).run()
        return {"lines": lines, "samples": {n: read_samples(store.engine, n, started, time.time() + 1) for n in names}}
    finally:
        store.close()


@pytest.fixture(scope="module")  # once per session (one module), its servers gone when the module is done
def matrix(request, tmp_path_factory):
    """One pass over every selected cell (those of the collected tests: -k narrows it): {(version, set-up):
    outcome}, plus what was absent and the timings."""
    from opsbook.run.kernels.many import Job, run_jobs

    t0 = time.perf_counter()
    wanted: dict[int, set[str]] = {}
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module is sys.modules[__name__] and "version" in params:
            wanted.setdefault(params["version"], set()).add(params["setup"])
    present = {v: pgversions.bindir(v) for v in wanted}
    present = {v: b for v, b in present.items() if b is not None}
    servers, made = [], {}
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            built = dict(zip(present, pool.map(lambda v: build(v, present[v], wanted[v]), present)))
        for v, (srv, deps) in built.items():
            servers += srv
            made.update({(v, s): d for s, d in deps.items()})
        t_built = time.perf_counter()
        tmp = tmp_path_factory.mktemp("matrix")
        targets = {target_name(*cell): {"dsn": d.conninfo} for cell, d in made.items()}
        history = f"sqlite:///{tmp / 'history.sqlite'}"
        config = from_dict({"targets": targets, "history": {"url": history},
                            "reports": {"dir": str(tmp / "reports")}})
        config_file = tmp / "opsbook.toml"
        config_file.write_text("".join(f'[targets.{n}]\ndsn = "{t["dsn"]}"\n' for n, t in targets.items()) +
                               f'[history]\nurl = "{history}"\n')
        runbooks = sorted(runbook_names(), key=lambda n: bool(runbook_meta(n).get("after_others")))
        backups = tmp / "backups"
        backups.mkdir()
        jobs = [Job(rb, target_name(*cell), params_for(rb, d, dump(d, backups)))
                for rb in runbooks for cell, d in made.items()]
        offsets = {id(d.server): d.server.log_file.stat().st_size for d in made.values()}  # the pass from here
        snapshot = cli(config_file, "snapshot", "--all")
        runs: dict[tuple, dict] = {cell: {} for cell in made}
        by_target = {target_name(*cell): cell for cell in made}
        for i, result, failure in run_jobs(jobs, workers=WORKERS, config=config, output_dir=tmp / "reports",
                                           timeout_s=RUN_TIMEOUT_S):
            job = jobs[i]
            runs[by_target[job.target]][job.runbook] = (
                {"error": failure} if result is None else
                {**result.sidecar, "exit_code": result.exit_code, "html": result.html_path.read_text()})
        watch = short_watch(config, sorted(targets))
        t_ran = time.perf_counter()
        errors: dict[tuple, list[str]] = {cell: [] for cell in made}
        unattributed: dict[int, list[str]] = {}
        for server in {id(d.server): d.server for d in made.values()}.values():
            owners = {(d.dbname, d.user): cell for cell, d in made.items() if d.server is server}
            # a server's own lines (no session: a walreceiver, a checkpointer) are the cell that owns the cluster
            mine = sorted((c for c, d in made.items() if d.server is server), key=lambda c: SETUPS.index(c[1]))
            owner = mine[0]
            for db, user, line in log_errors(server.log_file, offsets[id(server)]):
                cell = owners.get((db, user)) or (owner if not db else None)
                if cell is not None:
                    errors[cell].append(line)
                else:
                    unattributed.setdefault(deployments.major(server), []).append(f"db={db} user={user} {line}")
        out = {"cells": {cell: {"deployment": made[cell], "runs": runs[cell], "errors": errors[cell]}
                         for cell in made},
               "snapshot": snapshot, "watch": watch, "unattributed": unattributed,
               "absent": {v: pgversions.absent_reason(v) for v in wanted if v not in present},
               "timing": {"build_s": round(t_built - t0, 1), "runs_s": round(t_ran - t_built, 1),
                          "jobs": len(jobs)}}
        _write_report(out)
        yield out
    finally:
        for server in reversed(servers):  # standbys first
            server.stop()
            shutil.rmtree(server.data_dir.parent, ignore_errors=True)


def _write_report(out: dict) -> None:
    path = os.environ.get("OPSBOOK_MATRIX_REPORT")
    if not path:
        return
    cells = {}
    for (v, s), cell in out["cells"].items():
        cells[f"{v}/{s}"] = {
            "errors": cell["errors"],
            "runs": {rb: {"status": r.get("status", "crashed"), "error": r.get("error"),
                          "duration_s": r.get("duration_s"),
                          "partial": sorted({f["check"] for f in r.get("findings", [])
                                             if (f.get("skipped") or "").startswith((PARTIAL, TIMED_OUT))}),
                          "skipped": sorted({f"{f['check']}: {f['skipped']}" for f in r.get("findings", [])
                                             if f.get("skipped")})}
                     for rb, r in cell["runs"].items()}}
    Path(path).write_text(json.dumps({"cells": cells, "timing": out["timing"], "absent": out["absent"],
                                      "unattributed": out["unattributed"],
                                      "snapshot": [out["snapshot"].returncode, out["snapshot"].stdout,
                                                   out["snapshot"].stderr[-2000:]],
                                      "watch": out["watch"]["lines"]}, indent=1, default=str))


def _cell(matrix, version: int, setup: str) -> dict:
    pgversions.require(version)
    return matrix["cells"][(version, setup)]


@pytest.mark.parametrize("version,setup", CELLS, ids=[f"{v}-{s}" for v, s in CELLS])
def test_every_runbook_completes_and_judges_every_check(matrix, version, setup):
    cell = _cell(matrix, version, setup)
    crashed = {rb: r.get("error") for rb, r in cell["runs"].items() if r.get("status") != "ok"}
    assert crashed == {}, f"PostgreSQL {version} {setup}: runbooks that did not complete: {crashed}"
    assert len(cell["runs"]) == len(runbook_names())
    not_judged = {rb: [f"{f['check']}: {f['skipped']}" for f in r["findings"]
                       if (f.get("skipped") or "").startswith(NOT_JUDGED)] for rb, r in cell["runs"].items()}
    assert {rb: x for rb, x in not_judged.items() if x} == {}


@pytest.mark.parametrize("version,setup", CELLS, ids=[f"{v}-{s}" for v, s in CELLS])
def test_what_could_not_be_seen_is_a_finding_and_the_verdict_says_incomplete(matrix, version, setup):
    cell = _cell(matrix, version, setup)
    for rb, r in cell["runs"].items():
        blind = [f for f in r.get("findings", []) if (f.get("skipped") or "").startswith((PARTIAL, TIMED_OUT))]
        assert [f["check"] for f in blind if f["severity"] == "ok"] == [], f"{rb}: 'ok' for what it could not see"
        if blind:
            assert re.search(r"incomplete", r["html"], re.I), f"{rb}: {len(blind)} partial finding(s), no verdict"
    # pg_hba_file_rules is for superusers only; pg_authid too, but pg_read_all_data (14+) reads it
    closed = {"monitor": ("security.hba", "security.password_expiry"),
              "supabase": ("security.hba",) + (("security.password_expiry",) if version < 14 else ())}
    audit = {f["check"]: f for f in cell["runs"]["security-audit"]["findings"]}
    unseen = {c: audit[c].get("skipped") for c in closed.get(setup, ())}
    assert all((why or "").startswith(PARTIAL) for why in unseen.values()), unseen


@pytest.mark.parametrize("version,setup", CELLS, ids=[f"{v}-{s}" for v, s in CELLS])
def test_one_pass_writes_no_error_into_the_server_log(matrix, version, setup):
    cell = _cell(matrix, version, setup)
    print(f"PostgreSQL {version} {setup}: {len(cell['errors'])} ERROR line(s)", *cell["errors"], sep="\n  ",
          file=sys.stderr)
    assert cell["errors"] == []


@pytest.mark.parametrize("version,setup", CELLS, ids=[f"{v}-{s}" for v, s in CELLS])
def test_snapshot_and_watch_take_the_cell(matrix, version, setup):
    _cell(matrix, version, setup)
    name = target_name(version, setup)
    snapshot = matrix["snapshot"]
    assert "Traceback" not in snapshot.stderr, snapshot.stderr[-3000:]
    assert not [line for line in snapshot.stderr.splitlines() if line.startswith(f"{name}:")], snapshot.stderr
    assert re.search(rf"^{re.escape(name)}: snapshot \d+", snapshot.stdout, re.M), snapshot.stdout
    watch = matrix["watch"]
    assert [line for line in watch["lines"] if line.startswith(f"{name}:")] == []  # "unreachable (the error)"
    taken = [row for row in watch["samples"][name] if row.get("status") != "unreachable"]
    assert len(taken) >= 2, watch["samples"][name]
