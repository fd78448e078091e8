"""Activity: what the server is doing now: long-running statements and transactions left idle."""
from __future__ import annotations

from ..core.display import human_seconds
from ..core.findings import Finding, Severity, grade
from .registry import Check, CheckContext, Threshold, register
from .visibility import STATS_GRANT, partial

HIDDEN_HOW = STATS_GRANT  # the grant that shows other roles' sessions (replication.lag names it too)


def visible(df):
    """The rows this role may read in full (no pg_read_all_stats hides other roles' sessions and statements)."""
    return df[~df["hidden"].astype(bool)] if "hidden" in df.columns and len(df) else df


def hidden_finding(check_id: str, df, what: str) -> list[Finding]:
    """A partial-visibility info finding when some sessions were hidden from this role; else nothing."""
    n = len(df) - len(visible(df))
    return partial(check_id, n, "sessions of other roles are hidden from this role (no pg_read_all_stats)",
                   f"Their {what} could not be judged.")


def subject(row) -> list[str]:
    """A session as finding objects: its pid first (remediation reads it), then who it is (application)."""
    app = row.application_name if isinstance(row.application_name, str) and row.application_name else None
    return [f"pid {row.pid}"] + ([app] if app else [])


def long_running(ctx: CheckContext, min_seconds: float = 0):
    """Active client statements running longer than `min_seconds`, oldest first (plus hidden sessions)."""
    return ctx.db.fetch("activity/long_running", min_seconds=min_seconds)


def _long_running_data(ctx: CheckContext):
    return long_running(ctx, min_seconds=0)


def cancel_then_terminate(pid: int) -> str:
    return f"SELECT pg_cancel_backend({pid});  -- if it does not stop: SELECT pg_terminate_backend({pid});"


def judge_long_running(df, *, warning: float = 300, critical: float = 1800) -> list[Finding]:
    out = []
    seen = visible(df)
    on_locks = seen["wait_event_type"].eq("Lock")  # their cause is a blocker: locks.blocking names it
    for row in seen[~on_locks].itertuples():
        sev = grade(row.running_s, warning, critical)
        if sev is Severity.OK:
            continue
        out.append(Finding(
            "activity.long_running", sev, f"pid {row.pid} active for {human_seconds(row.running_s)}",
            detail=f"role {row.role}, application {row.application_name or '-'}, "
                   f"wait {row.wait_event_type or '-'}/{row.wait_event or '-'}: {row.query[:300]}",
            objects=subject(row), value=round(row.running_s, 1),
            threshold=critical if sev is Severity.CRITICAL else warning, remediation=cancel_then_terminate(row.pid)))
    waiting = int((on_locks & (seen["running_s"] >= warning)).sum())
    if waiting and out:
        out[-1].detail += f" ({waiting} more statements this old are waiting on locks: see locks.blocking.)"
    if not out:
        also = f"; {waiting} waiting on locks, see locks.blocking" if waiting else ""
        out.append(Finding("activity.long_running", Severity.OK,
                           f"no statement active longer than {human_seconds(warning)} ({len(seen)} active now{also})",
                           threshold=warning))
    return out + hidden_finding("activity.long_running", df, "statements")


LONG_RUNNING = register(Check(
    id="activity.long_running",
    description="Active statements running longer than the threshold, with role, application, wait and query.",
    data=_long_running_data,
    judge=judge_long_running,
    thresholds=(
        Threshold("warning", 300, "seconds", "source guides 002/003: kill queries running over 5 minutes"),
        Threshold("critical", 1800, "seconds", "opsbook default: 30 minutes holds back vacuum and locks"),
    ),
    queries=("activity/long_running",),
    runbooks=("incident-triage",),
))


def idle_in_transaction(ctx: CheckContext):
    """Sessions idle inside a transaction, longest first, with locks held, sessions blocked and xmin age."""
    return ctx.db.fetch("activity/idle_in_transaction")


def judge_idle_in_transaction(df, *, warning: float = 300, critical: float = 1800) -> list[Finding]:
    out = []
    seen = visible(df)
    for row in seen.itertuples():
        sev = grade(row.idle_s, warning, critical)
        if sev is Severity.OK:
            continue
        if row.sessions_blocked:
            sev = Severity.CRITICAL  # it is the root of a blocking tree: the app is stuck behind it
        facts = [f"holds {row.locks_held} locks" if row.locks_held else "holds no table locks"]
        if row.sessions_blocked:
            facts.append(f"blocks {row.sessions_blocked} sessions")
        if row.horizon_age_xids is not None and row.horizon_age_xids == row.horizon_age_xids:
            oldest = " (the oldest on the server)" if row.holds_oldest_horizon else ""
            facts.append(f"holds the xmin horizon back by {int(row.horizon_age_xids):,} transactions{oldest}: "
                         "vacuum cannot remove rows deleted since")
        aborted = " (aborted: the app missed an error)" if "aborted" in row.state else ""
        out.append(Finding(
            "activity.idle_in_transaction", sev,
            f"pid {row.pid} idle in transaction{aborted} for {human_seconds(row.idle_s)}"
            + (f", directly blocking {row.sessions_blocked}" if row.sessions_blocked else ""),
            detail=f"role {row.role}, application {row.application_name or '-'}, transaction open "
                   f"{human_seconds(row.xact_age_s)}; {'; '.join(facts)}. Last statement: {row.last_query[:300]}",
            objects=subject(row), value=round(row.idle_s, 1),
            threshold=critical if sev is Severity.CRITICAL else warning,
            remediation=f"SELECT pg_terminate_backend({row.pid});  -- rolls its transaction back; pg_cancel_backend "
                        "cannot end an idle transaction. Then fix the code path that leaves it open, and set "
                        "idle_in_transaction_session_timeout for the app's role."))
    if not out:
        out.append(Finding("activity.idle_in_transaction", Severity.OK,
                           f"no session idle in a transaction longer than {human_seconds(warning)} "
                           f"({len(seen)} idle in transaction now)", threshold=warning))
    return out + _hidden_transactions(df)


def _hidden_transactions(df) -> list[Finding]:
    """Other roles' sessions: how many pg_locks shows inside a transaction, and how many of those block others."""
    hidden = df[df["hidden"].astype(bool)] if "hidden" in df.columns and len(df) else df.iloc[0:0]
    if hidden.empty:
        return []
    in_tx = hidden[hidden["in_transaction"].astype(bool)] if "in_transaction" in hidden else hidden.iloc[0:0]
    blocking = in_tx[in_tx["sessions_blocked"].fillna(0) > 0] if len(in_tx) else in_tx
    pids = ", ".join(str(p) for p in blocking["pid"].head(20))
    return partial("activity.idle_in_transaction", len(hidden),
                   f"sessions of other roles are hidden from this role (no pg_read_all_stats): {len(in_tx):,} of "
                   f"them inside a transaction, {len(blocking):,} blocking others",
                   "Whether they are idle in their transaction, and for how long, cannot be seen"
                   + (f"; the ones blocking others (pids {pids}) are in locks.blocking." if len(blocking) else "."))


IDLE_IN_TRANSACTION = register(Check(
    id="activity.idle_in_transaction",
    description="Sessions idle inside an open transaction: how long, the locks they hold, the sessions they block "
                "and whether they hold the xmin horizon back (critical when they block others).",
    data=idle_in_transaction,
    judge=judge_idle_in_transaction,
    thresholds=(
        Threshold("warning", 300, "seconds idle in transaction",
                  "source guides 002/003: the 5-minute rule for queries, applied to open transactions"),
        Threshold("critical", 1800, "seconds idle in transaction",
                  "opsbook default: 30 minutes of held locks and held-back vacuum"),
    ),
    queries=("activity/idle_in_transaction",),
    runbooks=("incident-triage",),
))
