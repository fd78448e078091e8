"""The kernel launcher jupyter_client runs when kernels come from the factory (`zygote.py`): it asks the factory
for a kernel with this process's folder, environment and stdio, then stands in for it until it exits.

Kept to the standard library: it starts in a few milliseconds."""
from __future__ import annotations

import json
import os
import signal
import socket
import sys

SOCKET_ENV = "OPSBOOK_KERNEL_FACTORY"


def main(argv: list[str]) -> int:
    path = os.environ.get(SOCKET_ENV)
    if not path:
        print("opsbook kernel launcher: no factory socket in $OPSBOOK_KERNEL_FACTORY", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    socket.send_fds(conn, [b"F"], [0, 1, 2])
    conn.sendall(json.dumps({"argv": argv, "env": env, "cwd": os.getcwd()}).encode() + b"\n")
    reader = conn.makefile("rb")
    line = reader.readline()
    if not line:
        print("opsbook kernel launcher: the factory did not start a kernel", file=sys.stderr)
        return 1
    pid = json.loads(line)["pid"]
    if "-f" in argv:  # the kernel's own pid, beside its connection file, for whoever reads its memory
        with open(argv[argv.index("-f") + 1] + ".pid", "w") as f:
            f.write(f"{pid}\n")

    def forward(signum, frame):  # noqa: ARG001 - an interrupt or a terminate meant for the kernel
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, forward)
    parent = os.getppid()
    conn.settimeout(1.0)
    while True:
        try:
            if not conn.recv(1):  # the kernel held the other end: it has exited
                return 0
        except TimeoutError:
            if os.getppid() != parent:  # whoever started us was killed: our exit ends the kernel too
                return 1
        except InterruptedError:
            continue
        except OSError:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
