"""Replication: slots that hold WAL (and fill the disk), and how far standbys are behind."""
from __future__ import annotations

from ..display import human_bytes, human_seconds
from ..findings import Finding, Severity, grade
from .activity import HIDDEN_HOW
from .registry import Check, CheckContext, Threshold, register

GiB = 1024 ** 3
MiB = 1024 ** 2


def slots(ctx: CheckContext):
    return ctx.db.fetch("replication/slots")


def judge_slots(df, *, warning_bytes: float = GiB, critical_bytes: float = 10 * GiB) -> list[Finding]:
    out = []
    for row in df.itertuples():
        retained = row.retained_wal_bytes if row.retained_wal_bytes == row.retained_wal_bytes else 0.0
        sev = grade(retained, warning_bytes, critical_bytes)
        why = []
        if not row.active:
            since = f" for {human_seconds(row.inactive_s)}" if row.inactive_s == row.inactive_s and \
                row.inactive_s is not None else ""
            why.append(f"inactive{since}: nothing consumes it, so the WAL it retains only grows")
            sev = max(sev, Severity.WARNING, key=lambda s: s.rank)
        if row.wal_status in ("unreserved", "lost"):
            why.append(f"wal_status {row.wal_status}: " + ("its consumer can never catch up; recreate it"
                                                           if row.wal_status == "lost" else
                                                           "WAL it needs is about to be removed"))
            sev = Severity.CRITICAL
        if sev is Severity.OK:
            continue
        if row.xmin_age_xids and row.xmin_age_xids == row.xmin_age_xids:
            why.append(f"holds the xmin horizon {int(row.xmin_age_xids):,} transactions back")
        out.append(Finding(
            "replication.slots", sev,
            f"slot {row.slot_name} ({row.slot_type}, {'active' if row.active else 'inactive'}) retains "
            f"{human_bytes(retained)} of WAL",
            detail="; ".join(why) + f". wal_status {row.wal_status or '-'}.",
            objects=[row.slot_name], value=int(retained), threshold=critical_bytes if sev is Severity.CRITICAL
            else warning_bytes,
            remediation=f"If nothing will consume slot {row.slot_name} again, drop it: SELECT "
                        f"pg_drop_replication_slot('{row.slot_name}'). Otherwise restart its consumer (standby, "
                        "CDC/realtime, logical subscriber), and cap the damage with max_slot_wal_keep_size."))
    if not out:
        out.append(Finding("replication.slots", Severity.OK,
                           f"{len(df)} replication slots, none inactive or retaining {human_bytes(warning_bytes)}+",
                           value=len(df), threshold=warning_bytes))
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
            reason = f"standby {row.standby}: its positions are hidden from this role (no pg_read_all_stats)"
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
