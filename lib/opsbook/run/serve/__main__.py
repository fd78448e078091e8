"""`python -m opsbook.run.serve [--idle SECONDS]`: the service in the foreground (what `opsbook serve start` runs in
the background, and what a systemd user unit would run)."""
from __future__ import annotations

import argparse
import os
import sys

from ...core.errors import OpsbookError
from .service import IDLE_S, Service
from .wire import SOCKET_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsbook.run.serve", description=__doc__)
    parser.add_argument("--idle", type=float, default=IDLE_S, help="exit after this many idle seconds")
    parser.add_argument("--socket", help="listen here instead of the opsbook home's socket")
    parser.add_argument("--parent-pid", type=int, help="exit once this process (the one that started it) is gone")
    parser.add_argument("--own-folder", action="store_true", help="remove the socket's folder on exit")
    args = parser.parse_args(argv)
    if args.socket:
        os.environ[SOCKET_ENV] = args.socket
    try:
        return Service(idle_s=args.idle, parent_pid=args.parent_pid, own_folder=args.own_folder).serve()
    except (RuntimeError, PermissionError, OpsbookError) as e:
        print(f"opsbook: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
