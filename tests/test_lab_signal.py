"""`opsbook lab` stops JupyterLab the way Jupyter expects: Ctrl-C or SIGTERM shut its kernels down cleanly (their
exit handlers run, so a kernel can write its record) and the command exits 130 or 143."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import free_port

DEADLINE_S = 120  # a cold JupyterLab start on a busy 2-core machine


def wait_for(what: str, probe, deadline_s: float = DEADLINE_S):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ours(mark: str) -> list[int]:
    """Processes started by this test (the server and its kernels inherit the marker in their environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                environ = (proc / "environ").read_bytes()
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if f"OPSBOOK_LAB_TEST={mark}".encode() in environ.split(b"\0") and state != "Z":
                found.append(int(proc.name))
    return found


def handles_stop_signals(pid: int) -> bool:
    """Whether `opsbook lab`'s handlers are installed: Python catches SIGINT by itself, SIGHUP only when told to."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGHUP - 1)))


def api(port: int, token: str, path: str, method: str = "GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers={"Authorization": f"token {token}"}, data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def serving(port: int, token: str):
    try:
        return api(port, token, "/api/status")
    except OSError:
        return None


@pytest.mark.parametrize("how, code", [("ctrl-c", 130), ("sigterm", 143)])
def test_a_stop_signal_shuts_the_kernels_down_cleanly(how, code, tmp_path):
    from jupyter_client import BlockingKernelClient

    mark, token, port = uuid.uuid4().hex, uuid.uuid4().hex, free_port()
    runtime = tmp_path / "runtime"
    env = {**os.environ, "OPSBOOK_LAB_TEST": mark, "JUPYTER_PORT": str(port), "JUPYTER_PORT_RETRIES": "0",
           "JUPYTER_TOKEN": token, "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    log = (tmp_path / "lab.log").open("wb")
    # its own session, as a shell runs a foreground job: Ctrl-C is SIGINT to the whole process group
    lab = subprocess.Popen([sys.executable, "-m", "opsbook.cli", "lab", "--no-browser"], env=env,
                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for("JupyterLab to serve", lambda: lab.poll() is None and serving(port, token))
        kernel = api(port, token, "/api/kernels", "POST")
        connection = runtime / f"kernel-{kernel['id']}.json"
        wait_for("the kernel's connection file", connection.exists)
        client = BlockingKernelClient(connection_file=str(connection))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=DEADLINE_S)  # iopub subscribed: the reply's output cannot be missed
        done = tmp_path / "kernel-exited-cleanly"
        reply = client.execute_interactive(f"import atexit; atexit.register(lambda: open({str(done)!r}, 'w').close())",
                                           timeout=DEADLINE_S)
        assert reply["content"]["status"] == "ok"
        client.stop_channels()
        assert len(ours(mark)) >= 3  # opsbook, Jupyter, the kernel
        assert handles_stop_signals(lab.pid)

        if how == "ctrl-c":
            os.killpg(lab.pid, signal.SIGINT)
        else:
            lab.send_signal(signal.SIGTERM)
        assert lab.wait(timeout=DEADLINE_S) == code, (tmp_path / "lab.log").read_text()[-3000:]
        wait_for("every process it started to be gone", lambda: not ours(mark), 30)
        assert done.exists(), "the kernel was killed: its exit handlers did not run"
    finally:
        for pid in ours(mark):  # only what this test started, by pid
            os.kill(pid, signal.SIGKILL)
        log.close()


STUBBORN = """
import signal, subprocess, sys
from opsbook.run.lab import supervise
child = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                          "print('ready', flush=True); time.sleep(600)"], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline() == "ready\\n"
print(child.pid, flush=True)
sys.exit(supervise(child, deadline_s=1.0))
"""


def test_a_jupyter_that_ignores_sigterm_is_killed_after_the_deadline():
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    try:
        child = int(proc.stdout.readline())
        wait_for("supervise to take the signals", lambda: handles_stop_signals(proc.pid), 30)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        wait_for("the child to be gone", lambda: not Path(f"/proc/{child}").exists(), 30)
    finally:
        if proc.poll() is None:
            proc.kill()
