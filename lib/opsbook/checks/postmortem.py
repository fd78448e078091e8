"""postmortem.*: what an incident window shows, judged from activity samples, snapshots and the server log."""
from __future__ import annotations

import re

from ..core.findings import Finding, Severity, grade
from .registry import Check, Threshold, register

RUNBOOKS = ("post-mortem",)
_ROLE = re.compile(r'too many connections for role "([^"]+)"')


def judge_root_cause(data, *, min_score: float = 1) -> list[Finding]:
    """One finding per candidate (data["candidates"], best first); the first is the best supported."""
    out = []
    for i, c in enumerate(data["candidates"]):
        if c.score < min_score:
            continue
        sev = Severity.CRITICAL if i == 0 and c.impact else Severity.WARNING if i == 0 or c.impact else Severity.INFO
        out.append(Finding("postmortem.root_cause", sev, c.title, detail=c.detail, objects=c.objects,
                           value=round(c.score, 1), threshold=min_score, remediation=c.remediation))
    if not out:
        ev = data["evidence"]
        return [Finding("postmortem.root_cause", Severity.INFO, "no root-cause candidate in the evidence",
                        detail="Neither the samples nor the log show a blocking root, deadlock, refused connection "
                               "or spill in the window." + (" Missing: " + "; ".join(ev.missing) if ev.missing
                                                              else ""))]
    return out


def _no_log(check: str, ev) -> list[Finding] | None:
    if ev.log.read:
        return None
    return [Finding(check, Severity.INFO, "not judged: no server log read", skipped="no server log (log_path) "
                    "was read", remediation="Give log_path: the server's log file, folder or a Supabase export.")]


def judge_errors(data, *, warning: float = 10, critical: float = 100, rate_ratio: float = 3) -> list[Finding]:
    ev = data["evidence"]
    skip = _no_log("postmortem.errors", ev)
    if skip:
        return skip
    c = ev.log.counts
    kinds = ("error", "fatal", "panic", "deadlock", "statement_timeout", "too_many_connections",
             "authentication_failed")
    n = sum(c.get(k, 0) for k in kinds)
    minutes = max(ev.window.duration_s / 60, 1 / 60)
    rate = n / minutes
    base = ev.log.baseline_errors / ev.log.baseline_minutes if ev.log.baseline_minutes >= 1 else None
    sev = grade(n, warning, critical)
    if c.get("panic"):
        sev = Severity.CRITICAL
    if base is not None and sev is Severity.OK and n and rate >= rate_ratio * max(base, 1e-9):
        sev = Severity.WARNING
    parts = ", ".join(f"{c[k]} {k}" for k in kinds if c.get(k))
    basetxt = (f"; baseline {base:.2f}/min over {ev.log.baseline_minutes / 60:.1f} h before" if base is not None
               else "; no baseline in the log")
    return [Finding("postmortem.errors", sev, f"{n} error(s) in the window ({rate:.1f}/min{basetxt})",
                    detail=parts or "no ERROR, FATAL or PANIC line in the window", value=n,
                    threshold=critical if sev is Severity.CRITICAL else warning,
                    remediation="" if sev is Severity.OK else "Read the merged event table below in time order; "
                                                              "the first errors point at the cause.")]


def judge_lock_waits(data, *, warning: float = 1, critical: float = 10) -> list[Finding]:
    ev = data["evidence"]
    waits = ev.log.counts.get("lock_wait", 0) if ev.log.read else None
    blocked = max((s.get("waiting") or 0 for s in ev.ok_samples if ev.window.inside(_dt(s["ts"]))), default=None)
    if waits is None and blocked is None:
        return [Finding("postmortem.lock_waits", Severity.INFO, "not judged: neither samples nor a log",
                        skipped="no activity samples and no server log for the window")]
    worst = max(waits or 0, blocked or 0)
    sev = grade(worst, warning, critical)
    seen = []
    if waits is not None:
        seen.append(f"{waits} lock wait(s) past deadlock_timeout in the log")
    if blocked is not None:
        seen.append(f"at most {blocked} session(s) waiting on a lock at once in the samples")
    return [Finding("postmortem.lock_waits", sev, "; ".join(seen), value=worst,
                    threshold=critical if sev is Severity.CRITICAL else warning,
                    detail="log_lock_waits = on logs every wait longer than deadlock_timeout (1 s by default).",
                    remediation="" if sev is Severity.OK else "See the root-cause candidates: the root of the "
                                                              "blocking tree is what to fix.")]


def judge_connections(data, *, warning_pct: float = 80, critical_refused: float = 1) -> list[Finding]:
    ev = data["evidence"]
    refused = ev.log.counts.get("too_many_connections", 0) if ev.log.read else None
    inside = [s for s in ev.ok_samples if ev.window.inside(_dt(s["ts"]))]
    peak = max(inside, key=lambda s: s.get("connections") or 0, default=None)
    if refused is None and peak is None:
        return [Finding("postmortem.connections", Severity.INFO, "not judged: neither samples nor a log",
                        skipped="no activity samples and no server log for the window")]
    pct = 100 * peak["connections"] / peak["max_connections"] if peak and peak.get("max_connections") else None
    who: dict[str, int] = {}  # the roles refused: the event's user, else the role the message names
    for e in ev.log.events:
        if e.kind == "too_many_connections" and ev.window.inside(e.ts):
            m = _ROLE.search(e.message)
            name = e.user or (m.group(1) if m else None)
            if name:
                who[name] = who.get(name, 0) + 1
    sev = Severity.CRITICAL if refused and refused >= critical_refused else \
        Severity.WARNING if pct is not None and pct >= warning_pct else Severity.OK
    bits = []
    if refused is not None:
        bits.append(f"{refused} connection(s) refused" + (" (" + ", ".join(
            f"role {k}: {v}" for k, v in sorted(who.items(), key=lambda kv: -kv[1])) + ")" if who else ""))
    if pct is not None:
        bits.append(f"peak {peak['connections']} of {peak['max_connections']} ({pct:.0f}%)")
    return [Finding("postmortem.connections", sev, "; ".join(bits), value=refused if refused else pct,
                    threshold=critical_refused if sev is Severity.CRITICAL else warning_pct,
                    objects=[*sorted(who), "max_connections"],
                    remediation="" if sev is Severity.OK else "A pooler (Supavisor in transaction mode) and per-"
                                                              "application pool limits.")]


def judge_timeouts(data, *, warning: float = 1, critical: float = 10) -> list[Finding]:
    ev = data["evidence"]
    skip = _no_log("postmortem.timeouts", ev)
    if skip:
        return skip
    t = [e for e in ev.log.events if e.kind == "statement_timeout" and ev.window.inside(e.ts)]
    n = ev.log.counts.get("statement_timeout", 0)
    apps = {}
    for e in t:
        a = e.application or ev.log.apps.get(e.pid or -1) or "application not in the log"
        apps[a] = apps.get(a, 0) + 1
    stmts = {}
    for e in t:
        if e.statement:
            stmts[e.statement] = stmts.get(e.statement, 0) + 1
    top = max(stmts.items(), key=lambda kv: kv[1]) if stmts else None
    sev = grade(n, warning, critical)
    return [Finding("postmortem.timeouts", sev, f"{n} statement(s) cancelled by statement_timeout"
                    + (" (" + ", ".join(f"{a}: {k}" for a, k in sorted(apps.items(), key=lambda kv: -kv[1])) + ")"
                       if apps else ""),
                    detail=f"Most cancelled: {top[0]} ({top[1]} times)" if top else "", objects=sorted(apps),
                    value=n, threshold=critical if sev is Severity.CRITICAL else warning,
                    remediation="" if sev is Severity.OK else "Timeouts are the symptom: they show who waited. "
                                                              "Fix what they waited for (the root cause).")]


def _dt(epoch: float):
    from datetime import datetime, timezone  # noqa: PLC0415

    return datetime.fromtimestamp(epoch, tz=timezone.utc)


register(Check(
    id="postmortem.root_cause",
    description="Root-cause candidates of an incident window, ranked by evidence: blocking roots (activity "
                "samples and the log's lock waits), deadlocks, refused connections, spills; each names the "
                "application, pid and relation and quotes the statement it blames. The first is the best supported.",
    judge=judge_root_cause,
    thresholds=(Threshold("min_score", 1, "evidence score", "opsbook default: any corroborated sign"),),
    runbooks=RUNBOOKS))
register(Check(
    id="postmortem.errors",
    description="ERROR, FATAL and PANIC lines of the server log in the incident window, against the log's "
                "baseline rate before it.",
    judge=judge_errors,
    thresholds=(Threshold("warning", 10, "errors in the window", "opsbook default"),
                Threshold("critical", 100, "errors in the window", "opsbook default"),
                Threshold("rate_ratio", 3, "times the baseline rate per minute", "opsbook default: a threefold "
                          "rise is not noise")),
    runbooks=RUNBOOKS))
register(Check(
    id="postmortem.lock_waits",
    description="Lock waits in the window: the log's 'still waiting' lines (log_lock_waits) and the most "
                "sessions waiting at once in the activity samples.",
    judge=judge_lock_waits,
    thresholds=(Threshold("warning", 1, "waits or sessions", "opsbook default"),
                Threshold("critical", 10, "waits or sessions", "opsbook default")),
    runbooks=RUNBOOKS))
register(Check(
    id="postmortem.connections",
    description="Connections refused (too many clients) in the log, and the peak of connections against "
                "max_connections in the samples.",
    judge=judge_connections,
    thresholds=(Threshold("warning_pct", 80, "% of max_connections", "guide 004: connections near the limit"),
                Threshold("critical_refused", 1, "refused connections", "opsbook default: any refusal is an "
                          "outage for that client")),
    runbooks=RUNBOOKS))
register(Check(
    id="postmortem.timeouts",
    description="Statements cancelled by statement_timeout in the window, by application, with the statement "
                "cancelled most.",
    judge=judge_timeouts,
    thresholds=(Threshold("warning", 1, "cancelled statements", "opsbook default"),
                Threshold("critical", 10, "cancelled statements", "opsbook default")),
    runbooks=RUNBOOKS))
