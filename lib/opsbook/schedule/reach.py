"""A target that cannot be reached: read from a run's findings, and probed cheaply while a job waits for it."""
from __future__ import annotations

from typing import Any

# Every runbook starts with Runbook.connect(), which judges connectivity.unreachable: critical when the target
# cannot be reached (refused, timeout, DNS, authentication...) or went away during the run (checks/connectivity.py).
CHECK = "connectivity.unreachable"


def unreachable(result: dict[str, Any] | None) -> str | None:
    """The title of the run's critical `connectivity.unreachable` finding (the target was not reached), or None."""
    for f in (result or {}).get("findings") or []:
        if isinstance(f, dict) and f.get("check") == CHECK and f.get("severity") == "critical":
            return str(f.get("title") or "cannot reach the target")
    return None


def connect_timeout_s(target) -> int:
    """The target's own connect_timeout (from its DSN) when it sets one, else the runbooks' default."""
    from ..database.session import DEFAULT_CONNECT_TIMEOUT_S, conninfo_of  # noqa: PLC0415

    try:
        from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

        value = conninfo_to_dict(conninfo_of(target)).get("connect_timeout")
        return max(1, int(value)) if value else DEFAULT_CONNECT_TIMEOUT_S
    except Exception:  # noqa: BLE001 - an unreadable DSN: the probe itself will say it cannot connect
        return DEFAULT_CONNECT_TIMEOUT_S


class Probe:
    """Does a target answer? One connection attempt per target per `run-due` invocation (tick), whatever number
    of jobs wait for it: the answer is kept for the rest of the tick."""

    def __init__(self, config):
        self.config = config
        self.answers: dict[str, bool] = {}

    def __call__(self, target: str) -> bool:
        if target not in self.answers:
            self.answers[target] = self._try(target)
        return self.answers[target]

    def _try(self, name: str) -> bool:
        from ..database.session import connect  # noqa: PLC0415

        try:
            target = self.config.target(name)
            connect(target, connect_timeout_s=connect_timeout_s(target), start_embedded=False).close()
        except Exception:  # noqa: BLE001 - ConnectError of any kind, an unset dsn_env: not answering as a run needs
            return False
        return True
