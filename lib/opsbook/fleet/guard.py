"""A Dask task's `opsbook run` dies with its worker and leaves nothing behind: this small process stands between.

A worker process that dies (killed, out of memory, its nanny gone) exits at once, without its plugins' teardown and
without the task's clean-up: its `opsbook run` child would go on against the database, then write a full report
into the task's temporary folder, where nobody collects it (Dask runs the task again elsewhere). The task therefore
starts `python guard.py PARENT_PID FOLDER -- opsbook run ...` in a process group of its own. The guard runs the
command in that group and waits. Once its parent is gone, it stops the run as a SIGTERM does (the kernel is
interrupted; a run on the worker's warm service is cancelled there), kills it if it has not ended within `GRACE_S`,
and removes the task's folder. While the parent lives, the guard is the command: same output, same exit code, and a
signal to the group (the task's timeout) reaches both. Run as a script, by path: it imports only the standard library.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

GRACE_S = 20.0  # a stopped run writes its (failed) report and shuts its kernel down; then it is killed
POLL_S = 0.2  # how soon a dead parent is noticed


def command(cmd: list[str], folder: str) -> list[str]:
    """`cmd` run under the guard, for the calling process as the parent it watches."""
    return [sys.executable, "-I", str(Path(__file__).resolve()), str(os.getpid()), folder, "--", *cmd]  # -I: no
    # folder of ours on sys.path (this one holds a distributed.py)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: guard.py PARENT_PID FOLDER -- COMMAND ...", file=sys.stderr)
        return 2
    parent, folder, cmd = int(argv[0]), argv[1], argv[3:]
    signal.signal(signal.SIGTERM, lambda *a: None)  # the group's SIGTERM (a timeout) stops the run: we wait for it
    # (a handler, not SIG_IGN: an ignored signal would stay ignored in the run we start)
    if os.getppid() != parent:  # gone before we could watch it
        shutil.rmtree(folder, ignore_errors=True)
        return 1
    run = subprocess.Popen(cmd)  # inherits our stdout, stderr and process group
    while True:
        try:
            code = run.wait(timeout=POLL_S)
            return code if code >= 0 else 128 - code
        except subprocess.TimeoutExpired:
            pass
        if os.getppid() != parent:
            break
    run.send_signal(signal.SIGTERM)  # as a stop: the run ends as a failed one, its kernel shut down
    try:
        run.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        run.kill()
        run.wait()
    shutil.rmtree(folder, ignore_errors=True)  # its report, notebook and sidecar: nobody will collect them
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
