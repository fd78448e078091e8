"""Standby-aware judging: on a server in recovery nothing that writes is prescribed, and the primary is named."""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, replace

from ..core.findings import Finding, Severity
from .visibility import PREFIX

QUERY = "replication/standby"
ATTR = "standby"  # the key in a check's DataFrame.attrs: a Standby on a server in recovery, absent on a primary
# Advice that writes, which a server in recovery refuses ("cannot execute ... in a read-only transaction"):
# statements in capitals, and re-running a runbook with apply=True. EXPLAIN (ANALYZE) and the signal functions
# (pg_cancel_backend, pg_terminate_backend) and pg_reload_conf() run on a standby.
WRITES = re.compile(r"\b(?:VACUUM|REINDEX|CLUSTER|TRUNCATE|DELETE FROM|INSERT INTO|UPDATE|GRANT|REVOKE|ALTER|CREATE|"
                    r"DROP|COMMENT ON|REFRESH MATERIALIZED VIEW|SECURITY LABEL|LOCK TABLE)\b|(?<!EXPLAIN \()"
                    r"\bANALYZE\b|\bapply=True\b")
_SEEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # session -> Standby | None, asked once per session


@dataclass(frozen=True)
class Standby:
    """A server in recovery, and the primary it streams from when this role may read pg_stat_wal_receiver."""

    primary_host: str | None = None
    primary_port: int | None = None

    @property
    def primary(self) -> str:
        port = f", port {self.primary_port}" if self.primary_port else ""
        if self.primary_host and self.primary_host.startswith("/"):  # primary_conninfo names a unix socket
            return f"the primary (socket directory {self.primary_host}{port} on this host)"
        if self.primary_host:
            return f"the primary ({self.primary_host}" + (f":{self.primary_port})" if self.primary_port else ")")
        return ("the primary (its address is this standby's primary_conninfo; pg_stat_wal_receiver is not readable "
                "by this role: pg_read_all_stats shows it)")


def standby_of(db) -> Standby | None:
    """The Standby behind this session, or None when the server is not in recovery."""
    df = db.fetch(QUERY)
    if not len(df) or not bool(df.iloc[0]["in_recovery"]):
        return None
    r = df.iloc[0]
    host = r["primary_host"] if isinstance(r["primary_host"], str) and r["primary_host"] else None
    port = r["primary_port"]
    return Standby(host, int(port) if host and port == port and port is not None else None)


def of_session(db) -> Standby | None:
    """standby_of(db), asked once per session; unknown (the query failed) reads as not a standby."""
    try:
        return _SEEN[db]
    except (KeyError, TypeError):
        pass
    try:
        got = standby_of(db)
    except Exception:  # noqa: BLE001 - a tiny statement_timeout, a lost session: the check itself says why
        return None
    try:
        _SEEN[db] = got
    except TypeError:  # a session that cannot be weakly referenced: asked again next time
        pass
    return got


def mark(df, ctx):
    """df with the standby (if any) in its attrs, for the judge to read; returns df."""
    standby = standby_of(ctx.db)
    if standby is not None:
        df.attrs[ATTR] = standby
    return df


def of(df) -> Standby | None:
    """The Standby a data function marked on df, None on a primary (and on hand-made rows)."""
    return getattr(df, "attrs", {}).get(ATTR)


def not_judged(check_id: str, standby: Standby, what: str, tables: int) -> Finding:
    """Facts that live on the primary only (last analyze and vacuum times, dead tuples): unknown here, never
    read as healthy or as neglected."""
    reason = f"{PREFIX}{what} on a standby are unknown (its statistics counters are its own)"
    return Finding(check_id, Severity.INFO, f"not judged on a standby: {what} are kept by the primary",
                   detail=f"This server is in recovery: its activity counters (pg_stat_all_tables) start empty and "
                          f"count only what happened here, and the primary's maintenance is not reflected in them. "
                          + (f"{tables:,} table{'s' * (tables != 1)} not judged. " if tables else "")
                          + "The planner statistics themselves (pg_statistic) are replicated: queries on this standby "
                            "use the primary's.",
                   value=tables, skipped=reason,
                   remediation=f"Run this check against {standby.primary}, which holds these facts; nothing can be "
                               f"run here to change them (a standby in recovery is read-only).")


def relay(findings: list[Finding], standby: Standby | None) -> list[Finding]:
    """On a standby, a remediation becomes something to do on the primary: the statement moves into the detail
    (the catalogue and the data here are the primary's), and the remediation says where to run it."""
    if standby is None:
        return findings
    out = []
    for f in findings:
        if not f.remediation or f.severity is Severity.OK:
            out.append(f)
            continue
        out.append(replace(f, detail=f"{f.detail} On {standby.primary}, not here: {f.remediation}".strip(),
                           remediation=f"Act on {standby.primary}: this server is a standby in recovery, where "
                                       f"nothing can be written; its catalogue and data are the primary's, so the "
                                       f"statement in the detail applies there."))
    return out


def place(findings: list[Finding], db) -> list[Finding]:
    """The net under every check (registry.run_check): on a standby, advice that writes and does not already say
    where to run it is relayed to the primary; on a primary (or without a session) findings are unchanged."""
    if db is None or not any(f.remediation and WRITES.search(f.remediation) for f in findings):
        return findings
    standby = of_session(db)
    if standby is None:
        return findings
    return [relay([f], standby)[0] if f.remediation and WRITES.search(f.remediation)
            and standby.primary not in f.remediation else f for f in findings]
