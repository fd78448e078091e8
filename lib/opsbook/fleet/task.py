"""One target's run as a self-contained task: a child `opsbook run --json` in its own process, its report files
read back as bytes. The same function runs in a local worker thread or on a Dask worker (no shared disk needed)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SUFFIXES = (".html", ".ipynb", ".json", ".md", ".missing.csv", ".missing.sql")


def run_target(runbook: str, target: str, params: dict[str, str], *, config_text: str | None = None,
               config_path: str | None = None, timeout_s: float = 600, output_dir: str | None = None, fail_on: str | None = None,
               keep_files: bool = False, started_by: str | None = None) -> dict[str, Any]:
    """Run one target; returns {target, exit_code, result (the `run --json` object) or error, files, worker, s}.

    With `output_dir` the child writes there (local mode); without it into a temporary folder whose files come
    back as bytes (distributed mode). Credentials are the worker's own (~/.pgpass, PGPASSWORD, dsn_env variables):
    nothing secret travels with the task. A run past `timeout_s` is killed with its kernel. `started_by` is what the
    sidecar says started the run (the caller's, e.g. "schedule"; else OPSBOOK_STARTED_BY if set, else "fleet")."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opsbook-fleet-") as tmp:
        env = {"OPSBOOK_STARTED_BY": "fleet", **os.environ}  # the sidecar's started_by, unless a launcher said
        if started_by is not None:
            env["OPSBOOK_STARTED_BY"] = started_by
        if config_path is not None:
            env["OPSBOOK_CONFIG"] = config_path
        elif config_text is not None:
            cfg = Path(tmp) / "opsbook.toml"
            cfg.write_text(config_text)
            env["OPSBOOK_CONFIG"] = str(cfg)
        from .warm import worker_socket  # noqa: PLC0415

        warm = worker_socket()
        if warm:  # on a Dask worker with its own service: the run takes that service's warm kernel
            env["OPSBOOK_SERVICE_SOCKET"] = warm
        out = output_dir or str(Path(tmp) / "reports")
        cmd = [_opsbook(), "run", runbook, "--target", target, "--output-dir", out, "--json"]
        for k, v in params.items():
            cmd += ["-p", f"{k}={v}"]
        if fail_on:
            cmd += ["--fail-on", fail_on]
        if not output_dir:  # nobody else collects these files: if this process dies, the run stops and they go
            from .guard import command  # noqa: PLC0415

            cmd = command(cmd, tmp)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)  # its own process group: a timeout kills the kernel too
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            return _row(target, 1, None, f"timed out after {timeout_s:g} s (killed)", t0, proc.pid)
        result = None
        try:
            result = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            pass
        if result is None:
            last = [line for line in stderr.splitlines() if line.strip()][-1:] or ["no output"]
            return _row(target, proc.returncode or 1, None, last[0].replace("opsbook: error: ", "")[:300], t0,
                        proc.pid)
        row = _row(target, proc.returncode, result, result.get("error"), t0, proc.pid)
        if not output_dir or keep_files:
            row["files"] = _read_files(Path(result["sidecar"]))
        return row


def _row(target: str, code: int, result: dict | None, error: str | None, t0: float, pid: int) -> dict[str, Any]:
    return {"target": target, "exit_code": code, "result": result, "error": error, "files": {},
            "worker": worker_name(pid), "duration_s": round(time.perf_counter() - t0, 2)}


def _read_files(sidecar: Path) -> dict[str, bytes]:
    stem = sidecar.with_suffix("")
    out = {}
    for p in stem.parent.glob(stem.name + ".*"):
        if p.is_file():
            out[p.name] = p.read_bytes()
    return out


def worker_name(pid: int) -> str:
    """The Dask worker's address inside a Dask task, else host:pid of the process that ran the runbook."""
    if "distributed" in sys.modules:  # only a Dask worker has imported it; a local fleet never pays for it
        try:
            from distributed import get_worker  # noqa: PLC0415

            return get_worker().address
        except ValueError:  # not inside a task
            pass
    return f"{socket.gethostname()}:{pid}"


def _opsbook() -> str:
    here = Path(sys.executable).parent / "opsbook"
    return str(here) if here.exists() else "opsbook"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
