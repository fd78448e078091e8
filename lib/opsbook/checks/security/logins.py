"""Failed sign-ins: Supabase Auth's audit log and the server log's authentication failures, with bursts per address
and per account."""
from __future__ import annotations

import datetime as dt
import re

from ...core.errors import SkipCheck
from ...core.findings import PARTIAL, Finding, Severity
from ..registry import Check, CheckContext, Threshold, register
from ...database.readable import access, grants

AUDIT_LOG = "auth.audit_log_entries"
COLUMNS = ["ts", "source", "client_addr", "user_name", "database", "message"]
DEFAULT_WINDOW_HOURS = 24


_FOR_USER = re.compile(r'for user "([^"]+)"')


def log_failures(path, since: dt.datetime, prefix: str | None = None) -> tuple[list[dict], str]:
    """(authentication failures from a server log: "password authentication failed for user ...", no pg_hba.conf
    entry, ...; a note on what could not be read)."""
    try:
        from ...logs import LogSourceError, Problems, iter_events  # noqa: PLC0415
    except ImportError:
        return [], f"log_path {path} not read: this opsbook has no log reader (opsbook.logs)"
    problems = Problems()
    try:
        events = [e for e in iter_events(path, prefix=prefix, since=since, problems=problems)
                  if e.kind == "authentication_failed"]
    except LogSourceError as e:
        return [], f"log_path not read: {e}"
    rows = []
    for e in events:
        named = _FOR_USER.search(e.message or "")  # the default log_line_prefix has no %u: the message names it
        rows.append({"ts": e.ts, "source": "server log", "client_addr": e.client,
                     "user_name": e.user or (named.group(1) if named else None), "database": e.database,
                     "message": e.message})
    unread = "; ".join(problems.lines()[:3]) if problems else ""
    return rows, (f"not all of the server log was readable: {unread}" if unread else "")


def _prefix(ctx: CheckContext) -> str | None:
    """The server's log_line_prefix, to read its stderr log (None when it cannot be asked)."""
    try:
        return ctx.db.scalar("SELECT current_setting('log_line_prefix')")
    except Exception:  # noqa: BLE001 - the reader detects the prefix from the lines instead
        return None


def failed_logins(ctx: CheckContext):
    import pandas as pd  # noqa: PLC0415

    hours = float(ctx.params.get("window_hours") or DEFAULT_WINDOW_HOURS)
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours)
    rows, notes, sources = [], [], []
    table = access(ctx.db, AUDIT_LOG)[AUDIT_LOG]  # asked first: a failed query would be an ERROR in the server log
    if table.readable:
        audit = ctx.db.fetch("security/audit_failures", since=since)
        sources.append(AUDIT_LOG)
        rows += [{"ts": r.created_at, "source": AUDIT_LOG, "client_addr": r.client_addr,
                  "user_name": r.user_name, "database": None, "message": r.error_message or r.action}
                 for r in audit.itertuples()]
    elif table.present:
        notes.append(f"{AUDIT_LOG} is not readable by this role ({table.why_not()})")
    else:
        notes.append(f"there is no {AUDIT_LOG} (no Supabase Auth here)")
    log_path = ctx.params.get("log_path") or (getattr(ctx.target, "extra", None) or {}).get("log_path")
    if log_path:
        log_rows, note = log_failures(log_path, since, prefix=_prefix(ctx))
        if "not read" not in note:
            sources.append(f"server log {log_path}")
        rows += log_rows
        if note:
            notes.append(note)
    if not sources:  # Supabase Auth's log is there but hidden from this role: the result is incomplete, not empty
        grant = grants([table]) if table.present else "grant the role SELECT on auth.audit_log_entries"
        raise SkipCheck((f"{PARTIAL}: " if table.present else "") + "no source of failed sign-ins: "
                        + ", ".join(notes or ["no auth.audit_log_entries"]) + f"; give log_path (a server log) or "
                        f"{grant}")
    df = pd.DataFrame(rows, columns=COLUMNS)
    if len(df):
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
        df = df.sort_values("ts", kind="stable").reset_index(drop=True)
    df.attrs.update(window_hours=hours, sources=sources, notes=notes)
    return df


def max_in_window(times, minutes: float) -> tuple[int, object]:
    """The most events within any `minutes`-long span, and when that span started."""
    ts = sorted(times)
    best, start, j = 0, None, 0
    span = dt.timedelta(minutes=minutes)
    for i, t in enumerate(ts):
        while t - ts[j] > span:
            j += 1
        if i - j + 1 > best:
            best, start = i - j + 1, ts[j]
    return best, start


def judge_failed_logins(df, *, warning: float = 20, critical: float = 100, burst_minutes: float = 60,
                        per_minute: float = 10) -> list[Finding]:
    hours, sources = df.attrs.get("window_hours", DEFAULT_WINDOW_HOURS), df.attrs.get("sources", [])
    notes = "; ".join(df.attrs.get("notes", []))
    where = " and ".join(sources)
    out = []
    for key, label in (("client_addr", "from address"), ("user_name", "against account")):
        for value, g in df[df[key].notna()].groupby(key, sort=True):
            n, start = max_in_window(list(g["ts"]), burst_minutes)
            if n < warning:
                continue
            others = g["user_name" if key == "client_addr" else "client_addr"].dropna().nunique()
            other = f"{others} account(s)" if key == "client_addr" else f"{others} address(es)"
            out.append(Finding("security.failed_logins", Severity.CRITICAL if n >= critical else Severity.WARNING,
                               f"{n} failed sign-ins within {burst_minutes:g} min {label} {value}",
                               detail=f"{len(g)} in the last {hours:g} h in all, involving {other}; the burst began "
                                      f"{start:%Y-%m-%d %H:%M} UTC. Source: {', '.join(sorted(set(g['source'])))}.",
                               objects=[str(value)], value=n, threshold=critical if n >= critical else warning,
                               remediation=("Block the address at the edge (network restrictions, WAF) and check "
                                            "whether any of its attempts succeeded; " if key == "client_addr" else
                                            "Reset or lock the account and tell its owner; ")
                                           + "keep Supabase Auth's rate limits and CAPTCHA on sign-in."))
    rate, at = max_in_window(list(df["ts"]), 1) if len(df) else (0, None)
    if rate > per_minute:
        out.append(Finding("security.failed_logins", Severity.WARNING,
                           f"{rate} failed sign-ins within one minute",
                           detail=f"At {at:%Y-%m-%d %H:%M} UTC; guide 001 alerts above {per_minute:g} per minute.",
                           value=rate, threshold=per_minute,
                           remediation="Look for one address or account behind it (the findings above)."))
    if not out:
        out.append(Finding("security.failed_logins", Severity.OK,
                           f"{len(df)} failed sign-in(s) in the last {hours:g} h, no burst",
                           detail=f"Read from {where}. No address or account reached {warning:g} failures within "
                                  f"{burst_minutes:g} minutes. {notes}".strip(), value=len(df)))
    elif notes:
        out[-1].detail += f" Note: {notes}."
    return out


FAILED_LOGINS = register(Check(
    id="security.failed_logins",
    description="Failed sign-ins over the runbook's window from auth.audit_log_entries (Supabase Auth) and, with "
                "log_path, the server log's authentication failures: bursts per address and per account, and the "
                "busiest minute.",
    data=failed_logins, judge=judge_failed_logins,
    thresholds=(Threshold("warning", 20, "failures from one address or against one account within burst_minutes",
                          "opsbook default: more than a user mistyping a password"),
                Threshold("critical", 100, "failures from one address or against one account within burst_minutes",
                          "opsbook default: a scripted attack"),
                Threshold("burst_minutes", 60, "minutes", "guide 001's failed-login query looks at the last hour"),
                Threshold("per_minute", 10, "failures in any one minute",
                          "guide 001 warning alert: failed login attempts > 10/minute")),
    queries=("security/audit_failures",), runbooks=("security-audit",)))
