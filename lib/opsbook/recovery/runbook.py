"""Where recovery runbooks meet the Runbook object: judge data gathered here, find the restore server and backups."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OpsbookError
from ..paths import user_path
from .tools import with_dbname

DEMO_BACKUPS_KEEP = 1  # dumps of the demo database kept in its backups folder: the newest only


def judge(rb, check_id: str, data: Any):
    """Judge data this package gathered (files, pg_restore output) as a check of the runbook `rb`."""
    return rb.judge(check_id, data)


def _server_of(target) -> tuple[str, str] | None:
    """(host, port) a target connects to, when its connection string says."""
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    if target.embedded:
        return None
    try:
        parts = conninfo_to_dict(target.conninfo())
    except Exception:  # noqa: BLE001 - a service name we cannot resolve here: compare by name only
        return None
    return (parts.get("host", ""), str(parts.get("port", "5432"))) if parts.get("host") else None


def backups_folder(target) -> Path | None:
    """Where this target's backups live: `backups = "/path"` on the target in opsbook.toml; for the built-in demo
    target, a folder beside the embedded server."""
    configured = target.extra.get("backups")
    if configured:
        return user_path(configured)
    if target.embedded:
        from ..embedded import default_home  # noqa: PLC0415

        return default_home() / "backups" / target.name
    return None


class ClientChoice:
    """The client tools a run chose, each for what (shown by backup.client), and the first refusal met."""

    COLUMNS = ["purpose", "tool", "path", "version", "ssl", "source"]

    def __init__(self, bindir: str | None = None):
        self.bindir = bindir
        self.used: list[dict] = []
        self.error = None  # ClientError

    def for_dump(self, server_version_num: int, conninfo: str):
        return self._choose("dump the live database", "pg_dump", server_version_num, conninfo, 0)

    def for_reading(self, backup):
        """A client to read an archive: the newest found unless one is given (old pg_restore cannot read newer
        archives)."""
        from .tools import ClientError, choose  # noqa: PLC0415

        try:
            client = choose(None, bindir=self.bindir, min_major=backup.dumped_by_major)
        except ClientError:
            client = choose(None, bindir=self.bindir)
        if backup.is_archive:
            self._note(client, "read the archive", "pg_restore")
        return client

    def for_restore(self, admin_conninfo: str, backup):
        from .tools import session_for  # noqa: PLC0415

        with session_for(admin_conninfo, "restore-server") as s:
            version = s.server_version_num
        return self._choose("restore the backup", "pg_restore" if backup.is_archive else "psql", version,
                            admin_conninfo, backup.dumped_by_major)

    def frame(self):
        import pandas as pd  # noqa: PLC0415

        df = pd.DataFrame(self.used, columns=self.COLUMNS)
        df.attrs.update(error=str(self.error) if self.error else None, kind=getattr(self.error, "kind", None))
        return df

    def _choose(self, purpose: str, tool: str, version: int, conninfo: str, min_major: int):
        from .tools import ClientError, choose  # noqa: PLC0415

        try:
            client = choose(version, conninfo=conninfo, bindir=self.bindir, min_major=min_major)
        except ClientError as e:
            self.error = self.error or e
            return None
        self._note(client, purpose, tool)
        return client

    def _note(self, client, purpose: str, tool: str) -> None:
        if not any(c["purpose"] == purpose and c["path"] == client.path(tool) for c in self.used):
            self.used.append({"purpose": purpose, "tool": tool, "path": client.path(tool), "version": client.version,
                              "ssl": client.ssl, "source": client.source})
