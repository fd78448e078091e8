"""The interactive mode: `opsbook serve start` holds a warm kernel and `opsbook run` hands it the run, with the
caller's environment, folder and configuration; the same answers, exit codes and reports as a local run."""
from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from report_checks import assert_report_files
from test_kernels import notebook

BIN = Path(sys.executable).parent
OPSBOOK = str(BIN / "opsbook")
PROBE = ("import os\nimport opsbook\nfrom opsbook import record\nfrom opsbook.config.paths import caller_cwd\n"
         "record('mark', os.environ.get('OB_SERVE_MARK', '-'))\n"
         "record('service_only', os.environ.get('OB_SERVE_SERVICE_ONLY', '-'))\n"
         "record('caller', str(caller_cwd()))\nrecord('pid', os.getpid())\nrecord('module', opsbook.__file__)")


def start_service(idle: float = 600, **extra_env) -> SimpleNamespace:
    home = Path(tempfile.mkdtemp(prefix="ob-serve-"))  # short: a Unix socket's path has 108 bytes
    svc = SimpleNamespace(home=home, env=lambda **kw: {**os.environ, "OPSBOOK_HOME": str(home), **kw})
    proc = subprocess.run([OPSBOOK, "serve", "start", "--idle", str(idle)], env=svc.env(**extra_env),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "started" in proc.stdout, proc.stderr
    return svc


def stop_service(svc: SimpleNamespace) -> None:
    t0 = time.monotonic()
    out = subprocess.run([OPSBOOK, "serve", "stop"], env=svc.env(), capture_output=True, text=True, timeout=120)
    shutil.rmtree(svc.home, ignore_errors=True)
    assert out.returncode == 0 and time.monotonic() - t0 < 30, f"the service did not stop: {out.stderr}"


def status(svc) -> dict:
    out = subprocess.run([OPSBOOK, "serve", "status", "--json"], env=svc.env(), capture_output=True, text=True,
                         timeout=60)
    return json.loads(out.stdout)


def wait_warm(svc) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        s = status(svc)
        if s.get("kernel_ready"):
            return s
        time.sleep(0.1)
    raise AssertionError(f"the service's next kernel never got warm: {s}")


@pytest.fixture(scope="module")
def service():
    svc = start_service(OB_SERVE_SERVICE_ONLY="from-the-service-start")
    yield svc
    stop_service(svc)


@pytest.fixture
def runbooks(tmp_path):
    folder = tmp_path / "rbs"
    notebook(folder, "probe", PROBE)
    return folder


def run(svc, *args, cwd, **env):
    return subprocess.run([OPSBOOK, "run", *args], env=svc.env(**env), cwd=cwd, capture_output=True, text=True,
                          timeout=180)


def test_runs_are_answered_by_the_service_each_with_its_callers_environment_and_folder(service, runbooks, tmp_path):
    before = wait_warm(service)["requests"]
    first = run(service, "probe", "--json", "--output-dir", "out", cwd=tmp_path, OPSBOOK_RUNBOOKS=str(runbooks),
                OB_SERVE_MARK="one")
    assert first.returncode == 0, first.stderr
    wait_warm(service)
    second = run(service, "probe", "--json", "--output-dir", "out", cwd=tmp_path, OPSBOOK_RUNBOOKS=str(runbooks))
    assert second.returncode == 0, second.stderr
    assert status(service)["requests"] == before + 2, "both runs were the service's, not local ones"
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert Path(a["report_html"]).parent.parent == tmp_path / "out", "a relative --output-dir is the caller's"
    assert a["metrics"]["mark"] == "one" and b["metrics"]["mark"] == "-", "no environment leaks between runs"
    assert a["metrics"]["service_only"] == b["metrics"]["service_only"] == "-", \
        "a run sees its caller's environment, not the one the service was started with"
    assert a["metrics"]["caller"] == b["metrics"]["caller"] == str(tmp_path)
    assert a["metrics"]["pid"] != b["metrics"]["pid"], "each run has a kernel of its own"
    assert_report_files(Path(a["report_html"]).with_suffix(""))


def test_a_real_triage_through_the_service_matches_a_local_one(service, db, tmp_path):
    """A target whose DSN comes from a variable only the caller has: the service runs it with the caller's."""
    (tmp_path / "opsbook.toml").write_text('[targets.shop]\ndsn_env = "OB_SERVE_DSN"\n')
    dsn = db.server.conninfo(dbname=db.name)
    wait_warm(service)
    served = run(service, "incident-triage", "--target", "shop", "--json", cwd=tmp_path, OB_SERVE_DSN=dsn)
    local = run(service, "incident-triage", "--target", "shop", "--json", "--local", cwd=tmp_path, OB_SERVE_DSN=dsn)
    assert served.returncode == local.returncode == 0, (served.stderr, local.stderr)
    s, lo = json.loads(served.stdout), json.loads(local.stdout)
    assert s["status"] == lo["status"] == "ok"
    assert sorted((f["check"], f["severity"]) for f in s["findings"]) == \
        sorted((f["check"], f["severity"]) for f in lo["findings"])
    assert set(s) == set(lo), "the same --json object"
    assert Path(s["report_html"]).parent.parent == tmp_path / "reports", "the caller's ./opsbook.toml was used"
    unset = run(service, "incident-triage", "--target", "shop", cwd=tmp_path)
    assert unset.returncode == 2 and "OB_SERVE_DSN" in unset.stderr, unset.stderr


@pytest.mark.parametrize("args, says", [(["nosuch-runbook"], "nosuch-runbook"),
                                        (["probe", "--target", "nope"], "nope"),
                                        (["probe", "-p", "unknown=1"], "unknown")])
def test_bad_input_through_the_service_is_one_line_and_exit_2(service, runbooks, tmp_path, args, says):
    wait_warm(service)
    before = status(service)["requests"]
    out = run(service, *args, cwd=tmp_path, OPSBOOK_RUNBOOKS=str(runbooks))
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("opsbook: error:") and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr
    assert status(service)["requests"] == before + 1, "the service answered it, and still answers"


def sleepy(tmp_path: Path) -> tuple[Path, Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    folder = tmp_path / "rbs-sleepy"
    notebook(folder, "sleepy", "from opsbook import record\nrecord('before_signal', 1)",
             f"import time, pathlib\nm = pathlib.Path({str(marks)!r})\n(m / 'started').touch()\n"
             "try:\n    time.sleep(120)\nfinally:\n    (m / 'cleaned').touch()",
             "record('after_signal', 1)")
    return folder, marks


def start_sleepy(service, tmp_path):
    folder, marks = sleepy(tmp_path)
    wait_warm(service)
    proc = subprocess.Popen([OPSBOOK, "run", "sleepy", "--json", "--output-dir", str(tmp_path / "out")],
                            env=service.env(OPSBOOK_RUNBOOKS=str(folder)), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (marks / "started").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (marks / "started").exists(), proc.communicate(timeout=30)
    return proc, marks


@pytest.fixture
def own_service():
    """A service of the test's own, stopped right after the test: a stop that follows a cancelled run within
    seconds must still stop it (the cancel's own signal once swallowed the stop)."""
    svc = start_service()
    yield svc
    stop_service(svc)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_caller_interrupts_the_run_in_the_service(own_service, tmp_path, sig, code):
    service = own_service
    proc, marks = start_sleepy(service, tmp_path)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert (marks / "cleaned").exists(), "the cell's finally-block ran"
    sidecar = assert_report_files(Path(json.loads(out)["report_html"]).with_suffix(""))
    assert sidecar["status"] == "failed" and f"interrupted by {signal.Signals(sig).name}" in sidecar["error"]
    assert sidecar["metrics"] == {"before_signal": 1}
    assert "Traceback" not in err
    assert "pid" in wait_warm(service), "the service did not stop: a caller's signal is not a stop"


def test_a_caller_killed_mid_run_still_gets_its_report_written(own_service, tmp_path):
    service = own_service
    proc, marks = start_sleepy(service, tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "out").rglob("sleepy--*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "pid" in wait_warm(service)  # it answers again: the run (and its report, written last) is over
    (sidecar_path,) = (tmp_path / "out").rglob("sleepy--*.json")
    sidecar = assert_report_files(sidecar_path.with_suffix(""))
    assert sidecar["status"] == "failed" and "interrupted" in sidecar["error"]
    assert (marks / "cleaned").exists()



def raw_request(svc, message: dict) -> dict:
    from opsbook.run.serve import wire

    old = os.environ.get("OPSBOOK_HOME")
    os.environ["OPSBOOK_HOME"] = str(svc.home)
    try:
        path = wire.socket_path()
    finally:
        os.environ["OPSBOOK_HOME"] = old
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(60)
        conn.connect(str(path))
        reader = wire.Reader(conn)
        assert "hello" in reader.read()
        wire.send(conn, message)
        return reader.read()


def test_a_malformed_request_gets_exit_2_and_the_service_goes_on(service):
    wait_warm(service)
    assert raw_request(service, {"op": "run", "runbook": 1})["exit_code"] == 2
    assert raw_request(service, {"op": "nonsense"})["exit_code"] == 2
    request = {"op": "run", "runbook": "probe", "target": "demo", "params": {}, "output_dir": None,
               "with_code": False, "self_contained": False, "fail_on": None, "config_path": None, "cwd": "/",
               "environ": {"A": 1}, "code": "another opsbook", "umask": 0o22}
    assert "must map strings to strings" in raw_request(service, request)["error"]
    assert raw_request(service, {**request, "cwd": "relative"})["exit_code"] == 2
    assert "declined" in raw_request(service, {**request, "environ": {"A": "1"}}), "other code is never run"
    assert raw_request(service, {"op": "status"})["pid"], "and the service still runs"


def test_the_client_sends_nothing_to_a_socket_in_a_folder_others_can_enter(tmp_path, monkeypatch):
    """An attacker's socket where ours should be: the request (which carries our environment) is never sent."""
    from opsbook.run.serve import client, wire

    home = Path(tempfile.mkdtemp(prefix="ob-evil-"))
    try:
        monkeypatch.setenv("OPSBOOK_HOME", str(home))
        path = wire.socket_path()
        path.parent.mkdir(mode=0o777)
        path.parent.chmod(0o777)
        received = []
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(3)

        def accept():
            try:
                conn, _ = listener.accept()
                conn.sendall(b'{"hello": "opsbook"}\n')
                received.append(conn.recv(65536))
            except OSError:
                pass

        t = threading.Thread(target=accept)
        t.start()
        monkeypatch.setenv("OB_SECRET", "hunter2-in-the-environment")
        answer = client.run_via_service(runbook="probe", target="demo", params={}, output_dir=None,
                                        with_code=False, self_contained=False, fail_on=None, config_path=None)
        t.join()
        listener.close()
        assert answer is None and received == [], "nothing reached the untrusted socket"
        path.parent.chmod(0o700)  # control: the same listener in a private folder is talked to
        assert wire.private_folder(path.parent) == path.parent
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_service_whose_code_changed_declines_the_run_which_then_runs_locally(runbooks, tmp_path):
    # A private copy of the code, first on the path of the service and of the client: changing the checkout's own
    # files would stop every other service of the suite (a Dask worker's, another test's) that took a run meanwhile.
    code = tmp_path / "code"
    shutil.copytree(Path(importlib.import_module("opsbook").__file__).parent, code / "opsbook",
                    ignore=shutil.ignore_patterns("__pycache__"))
    svc = start_service(PYTHONPATH=str(code))
    try:
        module = code / "opsbook" / "run" / "serve" / "wire.py"
        st = module.stat()
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        out = run(svc, "probe", "--json", "--output-dir", "out", cwd=tmp_path, OPSBOOK_RUNBOOKS=str(runbooks),
                  PYTHONPATH=str(code))
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["status"] == "ok", "it ran, locally"
        assert Path(doc["metrics"]["module"]).is_relative_to(code), "the copy ran, not the checkout"
        deadline = time.monotonic() + 30
        while status(svc) != {"running": False} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status(svc) == {"running": False}, "the stale service stopped"
    finally:
        stop_service(svc)


def test_an_idle_service_exits_and_removes_its_socket():
    svc = start_service(idle=1)
    try:
        from opsbook.run.serve import wire

        sock = Path(subprocess.run([sys.executable, "-c", "from opsbook.run.serve import wire; print(wire.socket_path())"],
                                   env=svc.env(), capture_output=True, text=True, check=True).stdout.strip())
        assert sock.exists() and oct(sock.stat().st_mode & 0o777) == "0o600"
        assert oct(sock.parent.stat().st_mode & 0o777) == "0o700"
        deadline = time.monotonic() + 30
        while sock.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not sock.exists() and status(svc) == {"running": False}
        assert wire.MAX_SOCKET_PATH < 108
    finally:
        stop_service(svc)


def test_reports_written_by_the_service_get_the_callers_umask(service, runbooks, tmp_path):
    wait_warm(service)
    out = subprocess.run([OPSBOOK, "run", "probe", "--json", "--output-dir", "out"], cwd=tmp_path, umask=0o077,
                         env=service.env(OPSBOOK_RUNBOOKS=str(runbooks)), capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    html = Path(json.loads(out.stdout)["report_html"])
    assert html.stat().st_mode & 0o777 == 0o600, oct(html.stat().st_mode)


def test_nonsense_that_once_crashed_or_corrupted_the_service_is_refused(service):
    from opsbook.run.serve import wire

    wait_warm(service)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:  # JSON nested deeper than Python recurses
        conn.settimeout(30)
        conn.connect(status(service)["socket"])
        reader = wire.Reader(conn)
        reader.read()
        conn.sendall(b"[" * 200_000 + b"\n")
        with pytest.raises(wire.WireError):
            reader.read()  # the service closed this connection, and goes on
    request = {"op": "run", "runbook": "probe", "target": "demo", "params": {}, "output_dir": None,
               "with_code": False, "self_contained": False, "fail_on": None, "config_path": None, "cwd": "/",
               "environ": {"=weird": "x", "OB_LEAK": "caller-secret"}, "code": "x", "umask": 0o22}
    answer = raw_request(service, request)
    assert answer["exit_code"] == 2 and "environment" in answer["error"]
    assert "pid" in wait_warm(service), "the service still answers"


def test_an_early_cancel_is_taken_by_the_run_when_it_becomes_interruptible(tmp_path, monkeypatch):
    """The service's cancel may land while the run still loads its configuration or waits for a kernel."""
    from opsbook.config.file import from_dict
    from opsbook.run.kernels import execute
    from opsbook.run.runner import run_runbook

    folder, marks = sleepy(tmp_path)
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(folder))
    execute.EARLY_SIGNAL[0] = signal.SIGINT
    try:
        result = run_runbook("sleepy", config=from_dict({}), output_dir=tmp_path / "out")
    finally:
        execute.EARLY_SIGNAL[0] = None
    assert result.exit_code == 130 and "interrupted by SIGINT" in result.sidecar["error"]
    assert not (marks / "started").exists(), "no cell ran after the cancel"


def test_a_gone_callers_run_that_ignores_the_interrupt_loses_its_kernel(own_service, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    folder = tmp_path / "rbs-stubborn"
    notebook(folder, "stubborn", f"import signal, time, pathlib\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
             f"pathlib.Path({str(marks)!r}, 'started').touch()\ntime.sleep(300)")
    wait_warm(own_service)
    proc = subprocess.Popen([OPSBOOK, "run", "stubborn", "--output-dir", str(tmp_path / "out")],
                            env=own_service.env(OPSBOOK_RUNBOOKS=str(folder)), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not (marks / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    assert "pid" in wait_warm(own_service), "the service is free again (the run's kernel was killed)"
    (sidecar,) = (tmp_path / "out").rglob("stubborn--*.json")
    assert json.loads(sidecar.read_text())["status"] == "failed"


def _children(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_service_leaves_no_kernel_behind():
    svc = start_service()
    try:
        pid = wait_warm(svc)["pid"]
        family = _children(pid)
        family += [g for c in family for g in _children(c)]  # the factory's forked kernel
        assert len(family) >= 3, family  # the factory, the launcher, the warm kernel
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in family if _alive(p)], "the factory, the launcher and the kernel went with it"
    finally:
        shutil.rmtree(svc.home, ignore_errors=True)
