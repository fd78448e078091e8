"""Where recovery runbooks meet the Runbook object: judge data gathered here, find the restore server and backups."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tools import with_dbname

DEMO_BACKUPS_KEEP = 5  # dumps of the demo database kept in its backups folder


def judge(rb, check_id: str, data: Any):
    """Judge data this package gathered (files, pg_restore output) as a check of the runbook `rb`: thresholds
    resolved as for any check, findings recorded, and `rb.section(check_id)` shows them with the data."""
    from .. import checks  # noqa: PLC0415

    if hasattr(rb, "judge"):  # a Runbook that offers it publicly
        return rb.judge(check_id, data)
    result = checks.run_check(checks.get(check_id), rb._ctx(), rb.thresholds_for(check_id), data=data)
    return rb._keep(result)


@dataclass
class RestoreServer:
    """The server that receives scratch databases: the embedded one by default, or a configured target's."""

    admin_conninfo: str  # its maintenance database
    label: str  # safe to show
    data_dir: Path | None = None  # when it is a local embedded server: for the free-disk check


def restore_server(config, restore_target: str | None) -> RestoreServer:
    """`restore_target` names a target in opsbook.toml whose server gets the scratch database; None: the embedded
    server (started if needed)."""
    if restore_target:
        t = config.target(restore_target)
        if t.embedded:
            return _embedded()
        return RestoreServer(with_dbname(t.conninfo(), "postgres"), f"target {t.name} ({t.display()})")
    return _embedded()


def _embedded() -> RestoreServer:
    from ..embedded import default_server  # noqa: PLC0415

    server = default_server()
    server.start()
    return RestoreServer(server.conninfo(dbname="postgres"), f"the embedded server ({server.data_dir})",
                         server.data_dir)


def backups_folder(target) -> Path | None:
    """Where this target's backups live: `backups = "/path"` on the target in opsbook.toml; for the built-in demo
    target, a folder beside the embedded server."""
    configured = target.extra.get("backups")
    if configured:
        return Path(str(configured)).expanduser()
    if target.embedded:
        from ..embedded import default_home  # noqa: PLC0415

        return default_home() / "backups" / target.name
    return None
