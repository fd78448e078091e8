"""`opsbook fleet` for real: databases on the test server (one target unreachable), local processes and a real Dask
scheduler with two workers started as separate processes."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import pytest

from conftest import drop_database, make_database
from processes import own_processes

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
BIN = Path(sys.executable).parent
OPSBOOK = BIN / "opsbook"


@pytest.fixture(scope="module")
def fleet_config(pg, tmp_path_factory):
    """Three databases (tagged), one target nobody listens for, and the config file naming them."""
    dbs = [make_database(pg) for _ in range(3)]
    home = tmp_path_factory.mktemp("fleet")
    lines = []
    for name, d, tags in zip("abc", dbs, (["prod", "eu"], ["prod"], ["staging"])):
        lines += [f"[targets.{name}]", f"dsn = {json.dumps(d.conninfo)}", f"tags = {json.dumps(tags)}", ""]
    lines += ["[targets.down]", 'dsn = "host=127.0.0.1 port=1 dbname=postgres connect_timeout=2"', 'tags = ["prod"]']
    (home / "opsbook.toml").write_text("\n".join(lines) + "\n")
    yield home / "opsbook.toml"
    for d in dbs:
        drop_database(d)


def fleet(config: Path, *args, cwd: Path, timeout=300):
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES), "OPSBOOK_CONFIG": str(config)}
    return subprocess.run([str(OPSBOOK), "fleet", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def test_local_fleet_four_targets_two_workers(fleet_config, tmp_path):
    out = fleet(fleet_config, "connect", "--all", "--workers", "2", "--output-dir", "reports", "--json",
                "--fail-on", "critical", cwd=tmp_path)
    assert out.returncode == 3, out.stderr  # all ran; the unreachable one's critical finding matched --fail-on
    assert "Traceback" not in out.stderr
    doc = json.loads(out.stdout)
    assert sorted(doc["targets"]) == ["a", "b", "c", "down"] and doc["totals"]["ran"] == 4
    down = doc["targets"]["down"]
    assert [f["check"] for f in down["findings"] if f["severity"] == "critical"] == ["connectivity.unreachable"]
    for name in "abc":
        t = doc["targets"][name]
        assert t["status"] == "ok" and t["metrics"]["server_version_num"] >= 150000
        sidecar = json.loads(Path(t["sidecar"]).read_text())
        assert sidecar["worker"] == t["worker"] and sidecar["worker"].startswith(socket.gethostname() + ":")
        assert sidecar["started_by"] == "fleet", "a fleet's run is no person's: monthly-health counts no incident"
        assert Path(t["report_html"]).is_file() and Path(t["report_html"]).parent.parent == tmp_path / "reports"
    summary = Path(doc["summary_html"])
    assert summary.name.startswith("fleet--connect--") and summary.parent.parent == tmp_path / "reports"
    html = summary.read_text()
    for name in ("a", "b", "c", "down"):
        rel = os.path.relpath(doc["targets"][name]["report_html"], summary.parent)
        assert f'href="{rel}"' in html
    assert "Click a column to sort" in html and "4 targets, 4 ran, 0 failed" in html
    index = (tmp_path / "reports" / "index.html").read_text()
    assert summary.stem in index  # the index links the fleet summary
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 4 and any(line.startswith("down: ran") for line in lines)  # one line per finished target


def test_tag_and_failures_never_stop_the_others(fleet_config, tmp_path):
    out = fleet(fleet_config, "failing", "--tag", "staging", "--output-dir", "reports", "--json", cwd=tmp_path)
    assert out.returncode == 1  # the runbook failed on its target: exit 1, and its report is there
    doc = json.loads(out.stdout)
    assert list(doc["targets"]) == ["c"] and doc["targets"]["c"]["status"] == "failed"
    assert "ZeroDivisionError" in doc["targets"]["c"]["error"]
    out = fleet(fleet_config, "connect", "--targets", "a,down", "--timeout-per-target", "1", "--output-dir",
                "reports", "--json", cwd=tmp_path)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert {t["error"] for t in doc["targets"].values()} == {"timed out after 1 s (killed)"}
    assert doc["totals"]["failed"] == 2 and Path(doc["summary_html"]).is_file()


@pytest.mark.parametrize("args, message", [
    (["connect", "--all", "--tag", "prod"], "give exactly one of --targets a,b,c, --all or --tag NAME"),
    (["connect"], "give exactly one of"),
    (["connect", "--targets", "a,nope"], "target 'nope' not found"),
    (["connect", "--tag", "moon"], "no target has the tag 'moon'"),
    (["connect", "--all", "-p", "nope=1"], "unknown parameter 'nope'"),
    (["no-such-runbook", "--all"], "runbook 'no-such-runbook' not found"),
    (["connect", "--all", "--scheduler", "tcp://127.0.0.1:1"], "--insecure"),
    (["connect", "--all", "--scheduler", "tcp://127.0.0.1:1", "--insecure"], "cannot reach the Dask scheduler"),
])
def test_bad_usage_is_exit_2(fleet_config, tmp_path, args, message):
    out = fleet(fleet_config, *args, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "reports").exists()  # nothing ran


# ------------------------------------------------------------------------------------------ Dask
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path, fleet_config):
    """`dask scheduler` and two `dask worker` processes, each worker in its own folder with its own HOME and its own
    configuration (the DSNs never travel with a task). Plain tcp://, so the fleet runs with --insecure
    (TLS: tests/test_fleet_security.py)."""
    pytest.importorskip("distributed", reason="the fleet extra (dask[distributed]) is installed by `make test`")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path)]
    workers = []
    for i in (1, 2):
        home = tmp_path / f"worker{i}"
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "OPSBOOK_RUNBOOKS": str(FIXTURES),
               "OPSBOOK_CONFIG": str(fleet_config)}
        p = subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                              "--no-dashboard", "--name", f"w{i}", "--local-directory", str(home)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=home, env=env)
        procs.append(p)
        workers.append(p)
    from distributed import Client

    deadline = time.time() + 90
    with Client(address, timeout=60) as client:
        while len(client.scheduler_info()["workers"]) < 2:
            assert time.time() < deadline, "the Dask workers did not register in time"
            time.sleep(0.5)
        addresses = sorted(client.scheduler_info()["workers"])
    folders = set(Path(tempfile.gettempdir()).glob("opsbook-w-*"))
    yield {"address": address, "workers": workers, "addresses": addresses}
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    deadline = time.time() + 20  # each worker's own service (and its kernel factory) goes with its worker
    while (_worker_services() or set(Path(tempfile.gettempdir()).glob("opsbook-w-*")) - folders) and \
            time.time() < deadline:
        time.sleep(0.2)
    assert not _worker_services(), "a Dask worker's opsbook service outlived its worker"
    assert not set(Path(tempfile.gettempdir()).glob("opsbook-w-*")) - folders, "a worker service left its folder"


def _worker_services() -> list[int]:
    """The opsbook services of this test's Dask workers (another test's or run's are not counted)."""
    found = []
    for pid in own_processes(b"opsbook.run.serve"):
        try:
            if b"--parent-pid" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue  # it ended meanwhile
    return found


def test_dask_fleet_reports_land_with_the_client(fleet_config, tmp_path, dask_cluster):
    out = fleet(fleet_config, "connect", "--targets", "a,b,c,down", "--scheduler", dask_cluster["address"],
                "--insecure", "--output-dir", "reports", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    workers = {t["worker"] for t in doc["targets"].values()}
    assert workers <= set(dask_cluster["addresses"]) and len(workers) == 2, workers  # both workers ran some
    for name, t in doc["targets"].items():
        p = Path(t["report_html"])
        assert p.is_file() and p.parent.parent == tmp_path / "reports", p  # written by the client, not a worker
        assert json.loads(Path(t["sidecar"]).read_text())["worker"] == t["worker"]
    for i in (1, 2):  # the workers' own folders hold no report: they returned the files as bytes
        assert not list((tmp_path / f"worker{i}").rglob("*.html"))
    from distributed import Client

    from opsbook.fleet.warm import service_status

    with Client(dask_cluster["address"], timeout=60) as client:
        deadline = time.time() + 90  # each worker's own service (the plugin the fleet registered) warms a kernel
        while not all((s or {}).get("kernel_ready") for s in client.run(service_status).values()):
            assert time.time() < deadline, client.run(service_status)
            time.sleep(0.5)
        before = sum(s["requests"] for s in client.run(service_status).values())
        again = fleet(fleet_config, "connect", "--targets", "a,b,c,down", "--scheduler", dask_cluster["address"],
                      "--insecure", "--output-dir", "reports", "--json", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        after = client.run(service_status)
    assert sum(s["requests"] for s in after.values()) == before + 4, "every run took its worker's warm kernel"
    assert all(s["socket"] != str(Path.home()) for s in after.values())


def test_dask_worker_killed_mid_fleet_loses_no_target(fleet_config, tmp_path, dask_cluster):
    env = {**os.environ, "OPSBOOK_RUNBOOKS": str(FIXTURES), "OPSBOOK_CONFIG": str(fleet_config)}
    proc = subprocess.Popen([str(OPSBOOK), "fleet", "connect", "--targets", "a,b,c,down", "--scheduler",
                             dask_cluster["address"], "--insecure", "--output-dir", "reports", "--json"], env=env,
                            cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)  # both workers have a task by now (a run takes seconds)
    dask_cluster["workers"][0].kill()
    stdout, stderr = proc.communicate(timeout=300)
    doc = json.loads(stdout)
    assert sorted(doc["targets"]) == ["a", "b", "c", "down"], stderr  # every target is a row: none lost
    for t in doc["targets"].values():
        assert t["status"] == "ok" or t["error"], t  # ran on the surviving worker, or said why not
    assert sum(t["status"] == "ok" for t in doc["targets"].values()) >= 3
