"""A fleet whose worker dies mid-run: the local pool retries the target once (as Dask does), the Dask worker's own
run dies with it and leaves no copy behind, and the summary says failed / retried / ok as it happened.

The runbook of these tests holds each run at a gate (a file the test creates) after writing a "started" file
named for its target and its kernel's pid: the test kills a worker while its run is provably mid-way, then opens
the gate. No target connects to a database: what is tested is the fleet's bookkeeping of processes.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from processes import descends_from, parent_of

BIN = Path(sys.executable).parent
OPSBOOK = BIN / "opsbook"
WAIT_S = 120  # CI runs on two loaded cores: generous deadlines, conditions instead of sleeps

HOLD = '''\
import os, time
from pathlib import Path
from opsbook import record
gate = Path(gate_file)
Path(gate.parent, f"started-{target}-{os.getpid()}").write_text("")
deadline = time.monotonic() + 180
while not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
assert gate.exists(), "the test never opened the gate"
record('held_count', 1)
Path(gate.parent, f"finished-{target}-{os.getpid()}").write_text("")
'''


@pytest.fixture
def home(tmp_path):
    return make_home(tmp_path)


def make_home(tmp_path: Path) -> Path:
    """A runbooks folder holding `hold`, a configuration with two targets nobody connects to, the gate's folder."""
    books = tmp_path / "runbooks"
    books.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('target: str = "demo"  # target name\n'
                                       'gate_file: str = ""  # the run waits until this file exists')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Holds each run at a gate the test opens."), params,
                nbformat.v4.new_code_cell(HOLD)]
    nbformat.write(nb, books / "hold.ipynb")
    lines = []
    for name in ("a", "b"):
        lines += [f"[targets.{name}]", 'dsn = "host=127.0.0.1 port=1 dbname=postgres connect_timeout=1"', ""]
    (tmp_path / "opsbook.toml").write_text("\n".join(lines))
    (tmp_path / "gate").mkdir()
    return tmp_path


def env_of(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "OPSBOOK_RUNBOOKS": str(home / "runbooks"), "OPSBOOK_CONFIG": str(home / "opsbook.toml"),
            **extra}


def wait_for(what: str, condition, timeout: float = WAIT_S, proc: subprocess.Popen | None = None):
    """condition()'s first true value, polled until the deadline; fails early when `proc` ended meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the fleet ended before {what}: exit {proc.returncode}\n{err[-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def started(gate: Path) -> dict[str, list[int]]:
    """target -> pids of the kernels that started its run, in no particular order."""
    found: dict[str, list[int]] = {}
    for p in gate.glob("started-*"):
        _, target, pid = p.name.split("-")
        found.setdefault(target, []).append(int(pid))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def ancestor_with(pid: int, marker: bytes, stop: int) -> int | None:
    """The nearest ancestor of `pid` (below `stop`) whose command line holds `marker`."""
    while pid and pid > 1 and pid != stop:
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            return None
        pid = parent_of(pid)
    return None


def stop(proc: subprocess.Popen, gate: Path) -> None:
    """After a failed assertion: open the gate (held runs end by themselves), then end the fleet and what it
    started, by pid, checking each is still the process we saw."""
    gate.write_text("")
    if proc.poll() is None:
        below = descendants(proc.pid)
        proc.kill()
        proc.communicate()
        for pid, cmd in below.items():
            with contextlib.suppress(OSError):
                if alive(pid) and Path(f"/proc/{pid}/cmdline").read_bytes() == cmd:
                    os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------ local pool
def test_local_worker_killed_mid_run_is_retried(home, tmp_path):
    gate = home / "gate" / "open"
    proc = subprocess.Popen([str(OPSBOOK), "fleet", "hold", "--targets", "a,b", "--workers", "2", "-p",
                             f"gate_file={gate}", "--output-dir", "reports", "--json"], env=env_of(home), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        runs = wait_for("both runs to start", lambda: len(started(gate.parent)) == 2 and started(gate.parent),
                        proc=proc)
        kernel = runs["a"][0]
        assert descends_from(kernel, proc.pid)  # our own fleet's kernel, not another test's
        worker = ancestor_with(kernel, b"multiprocessing", proc.pid)  # the pool's worker process running a
        assert worker and descends_from(worker, proc.pid), "no pool worker above the kernel of a"
        os.kill(worker, signal.SIGKILL)
        wait_for("the retry of a to start", lambda: len(started(gate.parent).get("a", [])) == 2, proc=proc)
        gate.write_text("")
        stdout, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        stop(proc, gate)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    doc = json.loads(stdout)
    a, b = doc["targets"]["a"], doc["targets"]["b"]
    assert a["status"] == "ok" and a["attempts"] == 2 and a["retried"], a
    assert "died" in a["attempt_log"][0]["error"] and a["attempt_log"][1]["status"] == "ok"
    assert a["duration_s"] > 0 and a["metrics"]["held_count"] == 1
    assert b["status"] == "ok" and b["attempts"] == 1 and not b["retried"]
    assert doc["totals"]["ok"] == 2 and doc["totals"]["failed"] == 0 and doc["totals"]["retried"] == 1
    html = Path(doc["summary_html"]).read_text()
    assert "2 targets, 2 ran, 0 failed, 1 retried" in html and "attempt 2; attempt 1 failed on" in html
    lines = [line for line in stderr.splitlines() if line.startswith("a: ")]
    assert len(lines) == 1 and "ran" in lines[0] and "attempt 2" in lines[0] and "died" in lines[0], stderr
    assert not alive(kernel), "the dead worker's kernel outlived it"


# ------------------------------------------------------------------------------------------ Dask
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(request, home):
    """`dask scheduler` and two `dask worker` processes (no nanny: the worker process is the one the test kills),
    each with its own HOME and its own short TMPDIR, so that what a worker leaves in "its temp folder" is seen.
    "cold": each `opsbook run` starts its own kernel (OPSBOOK_NO_SERVICE); "warm": it asks its worker's service."""
    mode = getattr(request, "param", "warm")
    pytest.importorskip("distributed", reason="the fleet extra (dask[distributed]) is installed by `make test`")
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home)]
    workers = {}
    for name in ("w1", "w2"):
        folder = home / name
        folder.mkdir()
        tmp = tempfile.mkdtemp(prefix="obft-")  # short: the worker's service binds a socket inside it
        env = env_of(home, HOME=str(folder), TMPDIR=tmp, **({"OPSBOOK_NO_SERVICE": "1"} if mode == "cold" else {}))
        p = subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                              "--no-dashboard", "--name", name, "--local-directory", str(folder)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder, env=env)
        procs.append(p)
        workers[name] = {"proc": p, "tmp": Path(tmp)}
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                with Client(address, timeout=30) as client:
                    while len(client.scheduler_info()["workers"]) < 2:
                        assert time.monotonic() < deadline, "the Dask workers did not register in time"
                        time.sleep(0.2)
                    for addr, info in client.scheduler_info()["workers"].items():
                        workers[info["name"]]["address"] = addr
                break
            except OSError:  # the scheduler was not listening yet
                assert time.monotonic() < deadline, "the Dask scheduler did not start in time"
                time.sleep(0.5)
        yield {"address": address, "workers": workers, "mode": mode}
    finally:
        for group in (procs[1:], procs[:1]):
            for p in group:
                if p.poll() is None:
                    p.terminate()
            for p in group:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for w in workers.values():
            shutil.rmtree(w["tmp"], ignore_errors=True)


def descendants(ancestor: int) -> dict[int, bytes]:
    """Every process below `ancestor` now, with its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != ancestor and descends_from(int(entry.name), ancestor):
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return found


def copies(folder: Path) -> list[Path]:
    """Report files (or a task's folder for them) under a worker's temp folder."""
    return [p for p in folder.rglob("*") if p.name.startswith("opsbook-fleet-")
            or p.suffix in (".html", ".ipynb") or p.name.startswith("hold--")]


def warm_up(home: Path, tmp_path: Path, address: str) -> None:
    """One fleet with the gate open, then until each worker's own service has a kernel warm: the next runs go
    through the services (opsbook.fleet.warm), not through kernels of their own."""
    from distributed import Client

    from opsbook.fleet.warm import service_status

    gate = home / "gate" / "warm-up"
    gate.write_text("")
    out = subprocess.run([str(OPSBOOK), "fleet", "hold", "--targets", "a,b", "--scheduler", address, "--insecure",
                          "-p", f"gate_file={gate}", "--output-dir", "warm-up"], env=env_of(home), cwd=tmp_path,
                         capture_output=True, text=True, timeout=WAIT_S)
    assert out.returncode == 0, out.stderr
    for p in gate.parent.glob("*-*-*"):  # its started/finished marks: not the next fleet's
        p.unlink()
    with Client(address, timeout=30) as client:
        wait_for("the workers' services to warm a kernel",
                 lambda: all((s or {}).get("kernel_ready") for s in client.run(service_status).values()))


@pytest.mark.parametrize("cluster", ["cold", "warm"], indirect=True)
def test_dask_worker_killed_mid_run_stops_its_run_and_the_summary_shows_the_rerun(home, tmp_path, cluster):
    warm = cluster["mode"] == "warm"
    if warm:
        warm_up(home, tmp_path, cluster["address"])
    gate = home / "gate" / "open"
    proc = subprocess.Popen([str(OPSBOOK), "fleet", "hold", "--targets", "a,b", "--scheduler", cluster["address"],
                             "--insecure", "-p", f"gate_file={gate}", "--output-dir", "reports", "--json"],
                            env=env_of(home), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        runs = wait_for("both runs to start", lambda: len(started(gate.parent)) == 2 and started(gate.parent),
                        proc=proc)
        pids = {w["proc"].pid: name for name, w in cluster["workers"].items()}
        pid = runs["a"][0]
        while pid and pid not in pids:
            pid = parent_of(pid)
        assert pid, "the kernel of a runs under no worker of this test"
        victim, survivor = pids[pid], next(n for n in cluster["workers"] if n != pids[pid])
        below = descendants(pid)
        runs_of_a = [p for p, cmd in below.items() if b"\0run\0hold\0--target\0a\0" in cmd]
        assert runs_of_a, below  # the worker's `opsbook run` of a, mid-run
        kernel, chain = runs["a"][0], []
        while kernel and kernel != pid:
            chain.append(below.get(kernel, b""))
            kernel = parent_of(kernel)
        # cold: the run's own kernel; warm: usually the service's (a service slow to answer, under load, makes the
        # run start its own kernel: the same stop must hold either way)
        assert warm or not any(b"opsbook.run.serve" in cmd for cmd in chain), chain
        cluster["workers"][victim]["proc"].kill()
        cluster["workers"][victim]["proc"].wait()
        # before the gate opens: the dead worker's run must stop by itself (else it would wait there forever)
        wait_for("the dead worker's processes to end", lambda: not any(alive(p) for p in below), proc=proc)
        gate.write_text("")
        stdout, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        stop(proc, gate)
    assert not copies(cluster["workers"][victim]["tmp"]), copies(cluster["workers"][victim]["tmp"])
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    doc = json.loads(stdout)
    a, b = doc["targets"]["a"], doc["targets"]["b"]
    workers = {n: w["address"] for n, w in cluster["workers"].items()}
    assert a["status"] == "ok" and a["attempts"] == 2 and a["retried"] and a["worker"] == workers[survivor], a
    first = a["attempt_log"][0]
    assert first["worker"] == workers[victim] and "died" in first["error"] and first["duration_s"] > 0, first
    assert b["status"] == "ok" and b["attempts"] == 1 and b["worker"] == workers[survivor]
    assert doc["totals"]["retried"] == 1 and doc["totals"]["ok"] == 2
    assert "attempt 2; attempt 1 failed on " + workers[victim] in Path(doc["summary_html"]).read_text()
    assert not copies(cluster["workers"][survivor]["tmp"])  # the finished tasks cleaned up after themselves


# ------------------------------------------------------------------------------------------ the parts
GUARDED = '''\
import subprocess, sys, time
from opsbook.fleet.guard import command
folder, mark = sys.argv[1], sys.argv[2]
child = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text('running'); time.sleep(600)"
subprocess.Popen(command([sys.executable, "-c", child, mark], folder), start_new_session=True)
time.sleep(600)
'''


def test_the_guard_stops_the_run_and_removes_its_folder_when_its_parent_dies(tmp_path):
    """The worker's stand-in is killed; the guarded run (a sleeper) must stop and its folder must go."""
    folder, mark = tmp_path / "task", tmp_path / "running"
    folder.mkdir()
    (folder / "hold--a--120000Z.html").write_text("a report copy")
    parent = subprocess.Popen([sys.executable, "-c", GUARDED, str(folder), str(mark)])
    below: dict[int, bytes] = {}
    try:
        wait_for("the guarded run to start", mark.exists)
        below = descendants(parent.pid)
        assert len(below) == 2, below  # the guard and its run
        parent.kill()
        parent.wait()
        wait_for("the guard and its run to end", lambda: not any(alive(p) for p in below), timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid, cmd in below.items():  # only ours (same command line), and only if the guard failed to stop them
            with contextlib.suppress(OSError):
                if alive(pid) and Path(f"/proc/{pid}/cmdline").read_bytes() == cmd:
                    os.kill(pid, signal.SIGKILL)
    assert not folder.exists()


def test_a_failed_target_is_counted_failed_with_its_time_and_attempts(tmp_path):
    """A target whose worker died twice: failed, two attempts, real seconds; never "ok" in the worst counts."""
    import datetime as dt

    from opsbook.fleet.run import FleetResult, _attempt, _land, _local_raw
    from opsbook.fleet.summary import write_summary

    died = "its worker process died (exit -9)"
    first = _attempt(_local_raw("a", None, died, host="h", timeout_s=600, elapsed=4.26), 1)
    raw = _local_raw("a", None, died, host="h", timeout_s=600, elapsed=3.5)
    raw["attempt_log"] = [first, _attempt(raw, 2)]
    rows = [_land(raw)]
    result = FleetResult("hold", rows, dt.datetime(2026, 12, 7, 12, tzinfo=dt.timezone.utc), 8.0)
    write_summary(result, tmp_path, scheduler=None, workers=2)
    t = result.totals
    assert t["failed"] == 1 and t["ok"] == 0 and t["retried"] == 1 and t["attempts"] == 2
    assert not any(t["by_worst"].values()), t["by_worst"]  # it found nothing: it did not run
    a = result.to_json()["targets"]["a"]
    assert a["status"] == "failed" and a["duration_s"] == 3.5 and a["attempts"] == 2
    assert [x["duration_s"] for x in a["attempt_log"]] == [4.3, 3.5]
    html = result.summary_html.read_text()
    assert "1 targets, 0 ran, 1 failed, 1 retried" in html and "none: failed" in html and "4.3 s" in html
    assert ">ok</span>" not in html  # no "ok" badge anywhere for a target that never ran
