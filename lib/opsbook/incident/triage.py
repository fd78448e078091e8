"""The incident-triage verdict: P0-P3 with its response time, the worst findings and the next three actions."""
from __future__ import annotations

from ..database.session import NEXT_STEPS
from ..core.display import COLORS, badge, esc, show_html, table_html
from ..core.findings import Finding, Severity, counts, gaps
from ..core.severity import ESCALATION, finding_priority, incident_priority, ranked

CHECKS = ("connections.saturation", "connections.idle", "activity.long_running", "activity.idle_in_transaction",
          "locks.blocking", "locks.deadlocks", "queries.slow", "cache.hit_ratio", "replication.slots",
          "replication.lag", "wraparound.xid_age", "storage.temp_files", "app.freshness")
PRIORITY_COLORS = {0: COLORS["critical"], 1: COLORS["critical"], 2: COLORS["warning"], 3: COLORS["ok"]}

# Guide 001 "Service Outage", for when the database cannot be reached at all.
OUTAGE_STEPS = ("Check https://status.supabase.com and the project's dashboard: is the project up, paused or "
                "restarting?",
                "If users are affected: enable maintenance mode, fail over to a read replica if there is one, and post "
                "an INCIDENT ALERT (guide 004, 9.7) on the status page.")


# Problems of live sessions, where the remedy is an action on the database now (end a blocker, an idle
# transaction, a runaway statement): when one is at warning or worse, its action comes before any tuning advice,
# whatever that advice's severity (a low cache hit ratio is not fixed in the next minutes).
LIVE = ("locks.blocking", "activity.idle_in_transaction", "activity.long_running")


def _urgency(f: Finding, order: int) -> tuple[int, int]:
    """An outage (P0) first, then live sessions, then the rest, each in `ranked` order."""
    return (0 if finding_priority(f) == 0 else 1 if f.check in LIVE else 2, order)


def _first_call(remediation: str) -> str:
    """The actionable head of a remediation: up to its first SQL comment, else its first sentence."""
    head = remediation.split("  --")[0].split(". ")[0].strip()
    return head if len(head) <= 200 else head[:197] + "..."


def next_actions(findings: list[Finding], n: int = 3) -> list[tuple[str, str]]:
    """(why, what to do) for the n most urgent distinct actions, topped up with the guides' standing steps."""
    out: list[tuple[str, str]] = []
    down = [f for f in findings if f.check == "connectivity.unreachable" and f.severity is Severity.CRITICAL]
    if down:
        f = down[0]
        out = [(f.title, NEXT_STEPS.get(str(f.value), f.remediation)), (f.title, OUTAGE_STEPS[0]),
               ("users cannot reach the app", OUTAGE_STEPS[1])]
        return out[:n]
    seen: set[str] = set()
    urgent = ranked(x for x in findings if x.severity.rank >= Severity.WARNING.rank and x.remediation)
    for _, f in sorted(enumerate(urgent), key=lambda pair: _urgency(pair[1], pair[0])):
        what = _first_call(f.remediation)
        if what in seen:
            continue
        seen.add(what)
        out.append((f"{f.check}: {f.title}", what))
        if len(out) == n:
            return out
    prio = incident_priority(findings)
    standing = ([("escalation (guide 002)", f"Post an INCIDENT ALERT (guide 004, 9.7) and escalate: {ESCALATION[1]}.")]
                if prio.level <= 1 else [])
    app_tier = ("look at the app tier: edge function logs, the last deploy, https://status.supabase.com (guide 001, "
                "P1 performance degradation).")
    standing += [("if the fixes above do not help", f"Still slow or erroring? Then {app_tier}") if out else
                 ("no database fault explains it", f"If users still see errors, {app_tier}"),
                 ("after the incident", "Run this runbook again to confirm the verdict is back to P3, and write the "
                  "post-mortem while the timeline is fresh.")]
    return (out + standing)[:n]


def _one_per_subject(findings: list[Finding]) -> list[Finding]:
    """Keep the first finding about each pid (a root blocker is also an idle transaction: say it once)."""
    seen, out = set(), []
    for f in findings:
        subject = f.objects[0] if f.objects and str(f.objects[0]).startswith("pid ") else id(f)
        if subject not in seen:
            seen.add(subject)
            out.append(f)
    return out


def verdict_html(findings: list[Finding], *, top: int = 5) -> str:
    """The box a person reads first: priority, response time, worst findings, next actions."""
    prio = incident_priority(findings)
    color = PRIORITY_COLORS[prio.level]
    c = counts(findings)
    tally = " · ".join(f"{badge(s)} {n}" for s, n in c.items() if n and s != "ok")
    worst = _one_per_subject([f for f in ranked(findings) if f.severity.rank >= Severity.WARNING.rank])[:top]
    rows = "".join(f"<li>{badge(f.severity)} <code>{esc(f.check)}</code> {esc(f.title)}</li>" for f in worst)
    more = len(_one_per_subject([f for f in findings if f.severity.rank >= Severity.WARNING.rank])) - len(worst)
    rows += f'<li class="ob-muted">{more} more below</li>' if more > 0 else ""
    actions = "".join(f"<li><b>{esc(what)}</b><br><span class=\"ob-muted\">{esc(why)}</span></li>"
                      for why, what in next_actions(findings))
    missing = gaps(findings)
    wrong = (f"<div><b>What is wrong</b><ul style=\"margin:.2em 0\">{rows}</ul></div>" if rows else
             "<div>No warning or critical finding among what could be seen; the result is incomplete (below).</div>"
             if missing else "<div>No warning or critical finding: the database is not what is hurting.</div>")
    incomplete = ("<div class=\"ob-gaps\"><b>This result is incomplete</b><ul style=\"margin:.2em 0\">"
                  + "".join(f"<li>{esc(line)}</li>" for line in missing) + "</ul></div>") if missing else ""
    return (f'<div class="ob-verdict" style="border-color:{color}">'
            f'<div style="font-size:1.35em"><b style="color:{color}">{prio.label} {esc(prio.name)}</b>: respond '
            f'{esc(prio.response)} ({esc(prio.meaning)})</div>'
            f'<div class="ob-muted">severity levels of guide 002 · {tally or "all checks ok"}</div>'
            f"{wrong}{incomplete}<div><b>Next actions</b><ol style=\"margin:.2em 0\">{actions}</ol></div></div>")


def show_verdict(rb) -> None:
    show_html(verdict_html(rb.findings))


def freshness_rules(target: str, extra: dict | None) -> dict:
    """The runbook's `freshness` parameter; for the demo target without one, the demo's rules (its scraper and
    ingest tables; guide 000: vehicle data freshness < 4 hours)."""
    from ..config.file import DEMO_TARGET  # noqa: PLC0415
    from ..config.file import DEMO_FRESHNESS as FRESHNESS  # noqa: PLC0415

    return dict(extra or (FRESHNESS if target == DEMO_TARGET else {}))


def show_plan(plan) -> None:
    """The calls triage proposes, as copyable SQL."""
    if plan.empty:
        show_html('<p class="ob-muted">Nothing to cancel or terminate: no root blocker, idle transaction or '
                  "runaway statement past its threshold.</p>")
        return
    sql = "\n".join(f"{r.sql}  -- {r.reason}" for r in plan.itertuples())
    show_html("<p><b>Proposed calls</b> (run them yourself, or pass the pids as <code>terminate_pids</code> / "
              f'<code>cancel_pids</code> with <code>confirm=True</code>):</p><div class="ob-code">{esc(sql)}</div>')


def show_applied(applied) -> None:
    """What was run (or, without confirm, would have been)."""
    if applied.empty:
        return
    show_html("<p><b>Requested calls</b></p>" + table_html(applied))


def show_metrics(metrics: dict) -> None:
    """The numbers recorded for trends, each in its unit."""
    from ..core.display import show_metrics as show  # noqa: PLC0415

    show(metrics)


def record_metrics(rb) -> dict:
    """Record the incident's main numbers into the run's metrics (and return them)."""
    from ..report import record as runrecord  # noqa: PLC0415
    from ..checks.cache import overall_pct  # noqa: PLC0415

    out: dict = {"incident_priority": incident_priority(rb.findings).level}
    conns = rb.data("connections.saturation")
    if conns is not None:
        out["connections_used"] = conns.attrs["used_connections"]
        out["connections_max"] = conns.attrs["max_connections"]
    tree = rb.data("locks.blocking")
    if tree is not None:
        out["blocked_sessions"] = int((tree["depth"] > 0).sum())
    ages = [df["xact_age_s"].max() for df in (rb.data("activity.long_running"), rb.data("activity.idle_in_transaction"),
                                               tree) if df is not None and len(df)]
    if conns is not None:
        out["longest_transaction_s"] = round(float(max([a for a in ages if a == a], default=0.0)), 1)
    cache = rb.data("cache.hit_ratio")
    if cache is not None and overall_pct(cache) is not None:
        out["cache_hit_pct"] = overall_pct(cache)
    xids = rb.data("wraparound.xid_age")
    if xids is not None and len(xids):
        out["xid_age_max"] = int(xids["xid_age"].max())
    for name, value in out.items():
        runrecord.record(name, value)
    return out
