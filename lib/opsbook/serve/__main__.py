"""`python -m opsbook.serve [--idle SECONDS]`: the service in the foreground (what `opsbook serve start` runs in
the background, and what a systemd user unit would run)."""
from __future__ import annotations

import argparse
import sys

from .service import IDLE_S, Service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsbook.serve", description=__doc__)
    parser.add_argument("--idle", type=float, default=IDLE_S, help="exit after this many idle seconds")
    args = parser.parse_args(argv)
    try:
        return Service(idle_s=args.idle).serve()
    except (RuntimeError, PermissionError) as e:
        print(f"opsbook: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
