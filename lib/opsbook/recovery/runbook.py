"""Where recovery runbooks meet the Runbook object: judge data gathered here, find the restore server and backups."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..config.paths import user_path
from ..database.session import conninfo_of

DEMO_BACKUPS_KEEP = 1  # dumps of the demo database kept in its backups folder: the newest only


def judge(rb, check_id: str, data: Any, *, at_least: str | None = None, detail: str | None = None,
          remediation: str | None = None, also: Iterable = (), instead: list | None = None):
    """Judge data this package gathered (files, pg_restore output) as a check of the runbook `rb`.

    `at_least`: the severity the check's findings are raised to (a comparison that could not be made is a warning
    that says why, never an 'info' the badge reads as healthy), with `detail` and `remediation` for the findings
    raised; `also`: findings of this check made here (an estimate the judge has no data for); `instead`: the
    findings, for a case the judge does not know (its data is still kept for the section). All is settled before
    the findings are kept and recorded.
    """
    also = list(also)
    if at_least is None and not also and instead is None:
        return rb.judge(check_id, data)
    from .. import checks as registry  # noqa: PLC0415 - the loaded catalogue: get() and run_check()
    from ..core.findings import Severity  # noqa: PLC0415

    # Runbook.judge() keeps and records at once; the same steps here, with the findings settled in between
    context = rb._ctx()  # noqa: SLF001
    result = registry.run_check(registry.get(check_id), context, rb.thresholds_for(check_id), data=data)
    if instead is not None:
        result.findings[:] = instead
    floor = Severity.parse(at_least) if at_least else Severity.OK
    for f in result.findings:
        if f.severity.rank < floor.rank:
            f.severity = floor
            f.detail = detail or f.detail
            f.remediation = remediation or f.remediation
    result.findings.extend(also)
    return rb._keep(result)  # noqa: SLF001


def _server_of(target) -> tuple[str, str] | None:
    """(host, port) a target connects to, when its connection string says."""
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    if target.embedded:
        return None
    try:
        parts = conninfo_to_dict(conninfo_of(target))
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
        from ..config.paths import default_home  # noqa: PLC0415

        return default_home() / "backups" / target.name
    return None


class ClientChoice:
    """The client tools a run chose, each for what (shown by backup.client), and the first refusal met."""

    COLUMNS = ["purpose", "tool", "path", "version", "ssl", "source"]

    def __init__(self, bindir: str | None = None):
        self.bindir = bindir  # client_bindir: the client for the live database; scratch servers are chosen apart
        self.used: list[dict] = []
        self.error = None  # ClientError
        self.scratch_server = None  # sandbox.cluster.ServerBinaries of the throwaway cluster

    def for_dump(self, server_version_num: int, conninfo: str):
        """pg_dump of the server's major where installed; `conninfo` as tools.dump_conninfo() made it (sslmode at
        least require when opsbook's session is encrypted, so a client without SSL is not chosen)."""
        from .tools import SSL_STRENGTH, sslmode_of  # noqa: PLC0415

        mode = sslmode_of(conninfo)
        tls = f" (sslmode={mode})" if SSL_STRENGTH.get(mode, 0) >= SSL_STRENGTH["require"] else ""
        return self._choose(f"dump the live database{tls}", "pg_dump", server_version_num, conninfo, 0)

    def for_scratch(self, backup):
        """The server binaries of the throwaway cluster the backup restores into: the major version that made the
        dump where installed, else one that reads its output; chosen apart from client_bindir."""
        from ..database.sandbox.cluster import ScratchClusterError, server_for  # noqa: PLC0415

        try:
            server = server_for(backup.dumped_by_major)
        except ScratchClusterError:
            return None
        self.scratch_server = server
        self.used.append({"purpose": "run the throwaway scratch cluster", "tool": "postgres",
                          "path": str(server.bindir / "postgres"), "version": server.version, "ssl": None,
                          "source": server.source})
        return server.bindir

    def for_reading(self, backup):
        """A client to read an archive: the newest found unless one is given (old pg_restore cannot read newer
        archives)."""
        from .tools import ClientError, choose  # noqa: PLC0415

        try:
            client = choose(None, bindir=self.bindir, min_major=backup.dumped_by_major)
        except ClientError:  # client_bindir older than the archive's maker: another that reads it, if any
            try:
                client = choose(None, min_major=backup.dumped_by_major)
            except ClientError:
                client = choose(None, bindir=self.bindir)
        if backup.is_archive:
            self._note(client, "read the archive", "pg_restore")
        return client

    def for_restore(self, admin_conninfo: str, backup):
        """The throwaway cluster's own pg_restore/psql; on a scratch server, the usual choice, where client_bindir
        serves only if it is recent enough (it names the client for the live database)."""
        from .tools import ClientError, choose, major_of, probe, session_for  # noqa: PLC0415

        with session_for(admin_conninfo, "restore-server") as s:
            version = s.server_version_num
        tool = "pg_restore" if backup.is_archive else "psql"
        own = self.scratch_server
        if own is not None and own.major == major_of(version) and own.major >= backup.dumped_by_major:
            client = probe(str(own.bindir), own.source)
            if client is not None:
                self._note(client, "restore the backup", tool)
                return client
        candidates = [self.bindir, None] if self.bindir else [None]  # client_bindir, when recent enough
        for bindir in candidates:
            try:
                client = choose(version, conninfo=admin_conninfo, bindir=bindir, min_major=backup.dumped_by_major)
            except ClientError as e:
                if bindir is None:
                    self.error = self.error or e
                    return None
                continue
            self._note(client, "restore the backup", tool)
            return client
        return None

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
