"""Replication: slots that hold WAL (and fill the disk), and how far standbys are behind."""
from __future__ import annotations

from ..core.display import human_bytes, human_seconds
from ..core.findings import PARTIAL, Finding, Severity, grade
from .activity import HIDDEN_HOW
from .registry import Check, CheckContext, Threshold, register

GiB = 1024 ** 3
MiB = 1024 ** 2


def slots(ctx: CheckContext):
    return ctx.db.fetch("replication/slots")


def _num(v) -> float | None:
    return None if v is None or v != v else float(v)


def _text(v) -> str | None:
    return v if isinstance(v, str) and v else None


def judge_slots(df, *, warning_bytes: float = GiB, critical_bytes: float = 10 * GiB) -> list[Finding]:
    out = []
    for row in df.itertuples():
        status = _text(row.wal_status)
        retained = _num(row.retained_wal_bytes)  # None: no restart_lsn (invalidated, or WAL never reserved)
        active = bool(row.active)
        state = f"{row.slot_type}, {'active' if active else 'inactive'}"
        drop = f"SELECT pg_drop_replication_slot('{row.slot_name}')"
        if status == "lost" or (retained is None and _text(getattr(row, "invalidation_reason", None))):
            reason = _text(getattr(row, "invalidation_reason", None))
            out.append(Finding(
                "replication.slots", Severity.CRITICAL,
                f"slot {row.slot_name} ({state}) is lost: its consumer can never catch up",
                detail="the WAL it needed was removed (max_slot_wal_keep_size"
                       + (f"; invalidation_reason {reason}" if reason else "") + "), so it retains nothing now, "
                       "but whatever reads from it (a standby, CDC/realtime, a logical subscriber) has lost changes "
                       f"for good. wal_status {status or '-'}.",
                objects=[row.slot_name], value=status or reason, threshold="lost",
                remediation=f"Drop it ({drop}) and rebuild its consumer from a fresh copy: a new base backup for a "
                            "standby, a new initial sync for a logical subscriber or CDC tool."))
            continue
        if retained is None:
            out.append(Finding(
                "replication.slots", Severity.INFO,
                f"slot {row.slot_name} ({state}) has never reserved WAL: it retains nothing yet",
                detail="a physical slot created without immediately_reserve holds WAL only from the moment its "
                       "standby first connects; until then it costs nothing. wal_status -.",
                objects=[row.slot_name], value=0, threshold=warning_bytes,
                remediation=f"If no standby will use it, drop it ({drop}); otherwise nothing to do."))
            continue
        sev = grade(retained, warning_bytes, critical_bytes)
        why = []
        if not active:
            inactive_s = _num(row.inactive_s)
            since = f" for {human_seconds(inactive_s)}" if inactive_s is not None else ""
            why.append(f"inactive{since}: nothing consumes it, so the WAL it retains only grows")
            sev = max(sev, Severity.WARNING, key=lambda s: s.rank)
        if status == "unreserved":
            why.append("wal_status unreserved: WAL it needs is about to be removed; its consumer must catch up now "
                       "or be rebuilt")
            sev = Severity.CRITICAL
        if sev is Severity.OK:
            continue
        xmin_age = _num(row.xmin_age_xids)
        if xmin_age:
            why.append(f"holds the xmin horizon {int(xmin_age):,} transactions back")
        out.append(Finding(
            "replication.slots", sev,
            f"slot {row.slot_name} ({state}) retains {human_bytes(retained)} of WAL",
            detail="; ".join(why) + f". wal_status {status or '-'}.",
            objects=[row.slot_name], value=int(retained), threshold=critical_bytes if sev is Severity.CRITICAL
            else warning_bytes,
            remediation=f"If nothing will consume slot {row.slot_name} again, drop it: {drop}. Otherwise restart "
                        "its consumer (standby, CDC/realtime, logical subscriber), and cap the damage with "
                        "max_slot_wal_keep_size."))
    if not any(f.severity is not Severity.INFO for f in out):
        others = len(df) - len(out)
        title = (f"{others} replication slot{'s' * (others != 1)}, none inactive or retaining "
                 f"{human_bytes(warning_bytes)}+" if not out else
                 f"the other {others} slot{'s' * (others != 1)} active, each retaining less than "
                 f"{human_bytes(warning_bytes)}" if others else "no other replication slot")
        out.append(Finding("replication.slots", Severity.OK, title, value=others, threshold=warning_bytes))
    return out


SLOTS = register(Check(
    id="replication.slots",
    description="Replication slots that are inactive or retain a lot of WAL, with wal_status and the xmin they "
                "hold back.",
    data=slots,
    judge=judge_slots,
    thresholds=(
        Threshold("warning_bytes", GiB, "bytes of retained WAL", "opsbook default: 64 WAL segments, far past a "
                  "healthy consumer's lag; any inactive slot warns (PostgreSQL docs 27.2.6)"),
        Threshold("critical_bytes", 10 * GiB, "bytes of retained WAL", "opsbook default: more than the whole disk "
                  "of a small Supabase instance"),
    ),
    queries=("replication/slots",),
    runbooks=("incident-triage",),
))


def lag(ctx: CheckContext):
    return ctx.db.fetch("replication/lag")


def judge_lag(df, *, warning: float = 5, critical: float = 300, warning_bytes: float = 16 * MiB,
              critical_bytes: float = GiB) -> list[Finding]:
    out = []
    for row in df.itertuples():
        lag_s = row.replay_lag_s if row.replay_lag_s == row.replay_lag_s else None
        lag_b = row.replay_lag_bytes if row.replay_lag_bytes == row.replay_lag_bytes else None
        if not isinstance(row.state, str):  # pg_stat_replication shows other roles' standbys only to pg_read_all_stats
            reason = (f"{PARTIAL}: 1 standby ({row.standby}) shows no positions to this role "
                      "(no pg_read_all_stats)")
            out.append(Finding("replication.lag", Severity.INFO, f"partly skipped: {reason}", objects=[str(row.standby)],
                               skipped=reason, remediation=HIDDEN_HOW))
            continue
        by_time, by_bytes = grade(lag_s, warning, critical), grade(lag_b, warning_bytes, critical_bytes)
        if lag_s is not None and by_time.rank >= by_bytes.rank:  # report the measure that judged it
            sev, value, limits = by_time, round(lag_s, 1), (warning, critical)
        else:
            sev, value, limits = by_bytes, lag_b, (warning_bytes, critical_bytes)
        title = (f"standby {row.standby} is {human_bytes(lag_b or 0)}"
                 + (f" / {human_seconds(lag_s)}" if lag_s is not None else "") + " behind in replay")
        out.append(Finding(
            "replication.lag", sev, title, detail=f"state {row.state}, sync {row.sync_state or '-'}",
            objects=[str(row.standby)], value=value, threshold=limits[1] if sev is Severity.CRITICAL else limits[0],
            remediation="" if sev is Severity.OK else
            "Check the standby's replay: pg_is_wal_replay_paused(), recovery conflicts, long queries there, its "
            "network and disk. Its reads are stale: route them to the primary meanwhile."))
    return out or [Finding("replication.lag", Severity.OK, "no standbys: nothing to lag behind", value=0)]


LAG = register(Check(
    id="replication.lag",
    description="Replay lag of each standby streaming from this server (or of this server, when it is a standby), "
                "in seconds and bytes.",
    data=lag,
    judge=judge_lag,
    thresholds=(
        Threshold("warning", 5, "seconds behind", "pghero: replica lag under 5 s"),
        Threshold("critical", 300, "seconds behind", "opsbook default: 5 minutes of stale reads"),
        Threshold("warning_bytes", 16 * MiB, "bytes of WAL not replayed", "opsbook default: one WAL segment"),
        Threshold("critical_bytes", GiB, "bytes of WAL not replayed", "opsbook default: 64 WAL segments"),
    ),
    queries=("replication/lag",),
    runbooks=("incident-triage",),
))
