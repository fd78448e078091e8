"""The prefilled post-mortem as Markdown (for a wiki or an issue) and the three messages of guide 004 (9.7)."""
from __future__ import annotations

from ...core.display import human_seconds
from ...core.escape import line, md_cell, md_code, md_text

WHAT_CHARS = 160  # of an event's text in a timeline row


def impact(ev, findings) -> dict:
    """Duration, sessions affected, statements failed, error rate against the baseline."""
    c = ev.log.counts
    failed = sum(c.get(k, 0) for k in ("error", "statement_timeout", "deadlock", "fatal", "panic"))
    refused = c.get("too_many_connections", 0)
    pids = {e.pid for e in ev.log.events if ev.window.inside(e.ts) and e.pid is not None and
            e.kind in ("lock_wait", "statement_timeout", "deadlock", "error", "too_many_connections")}
    blocked_max = max((s.get("waiting") or 0 for s in ev.ok_samples), default=0)
    minutes = max(ev.window.duration_s / 60, 1 / 60)
    base = ev.log.baseline_errors / ev.log.baseline_minutes if ev.log.baseline_minutes >= 1 else None
    return {"duration_s": round(ev.window.duration_s, 1), "sessions_affected": max(len(pids), blocked_max),
            "statements_failed": failed, "connections_refused": refused,
            "errors_per_min": round((failed + refused) / minutes, 2),
            "baseline_errors_per_min": None if base is None else round(base, 3),
            "blocked_sessions_max": blocked_max}


def collapse(df) -> list[tuple]:
    """(ts, source, kind, what, n): runs of the same source and kind within a minute become one line."""
    out: list[list] = []
    for r in df.itertuples():
        last = out[-1] if out else None
        if last and last[1] == r.source and last[2] == r.kind and (r.ts - last[0]).total_seconds() < 60:
            last[4] += 1
            continue
        out.append([r.ts, r.source, r.kind, r.what, 1])
    return [tuple(x) for x in out]


def document(*, title: str, severity: str, target: str, ev, findings, imp: dict, timeline, report_name: str = "")\
        -> str:
    """The post-mortem, prefilled: what the evidence says is written, what only people know is a prompt."""
    roots = [f for f in findings if f.check == "postmortem.root_cause" and not f.skipped]
    other = [f for f in findings if f.check != "postmortem.root_cause" and f.severity.value in ("critical", "warning")]
    w = ev.window
    # what the database, the log or the sidecars hold is a code span (a cell's code spans): never a link, an image
    # or HTML in any renderer; the only links in this document would be ones opsbook writes
    lines = [f"# Post-mortem: {md_text(title)}", "",
             f"- **Severity:** {md_text(severity)}", f"- **Database:** {md_text(target)}",
             f"- **Window:** {w.text()} ({human_seconds(w.duration_s)})",
             f"- **Status:** draft, prefilled by opsbook{f' ({report_name})' if report_name else ''}", "",
             "## Summary", "",
             (f"{md_code(roots[0].title)}." if roots else "The evidence names no single cause (see below).")
             + f" {imp['statements_failed']} statement(s) failed and {imp['connections_refused']} connection(s) "
               f"were refused in the window.", "",
             "## Impact", "",
             f"- Duration: {human_seconds(imp['duration_s'])}",
             f"- Sessions affected: {imp['sessions_affected']} (most waiting on locks at once: "
             f"{imp['blocked_sessions_max']})",
             f"- Statements failed: {imp['statements_failed']}; connections refused: {imp['connections_refused']}",
             f"- Error rate: {imp['errors_per_min']}/min" + (f" against a baseline of "
                                                            f"{imp['baseline_errors_per_min']}/min"
                                                            if imp["baseline_errors_per_min"] is not None else
                                                            " (no baseline in the log)"),
             "- User-visible impact: _(fill in: which features failed, for whom)_", "",
             "## Timeline (UTC)", "", "| time | source | what |", "|---|---|---|"]
    if timeline is not None and len(timeline):
        inside = timeline[timeline["in_window"]]
        for ts, source, kind, what, n in collapse(inside if len(inside) else timeline)[:40]:
            many = f"{n} x " if n > 1 else ""
            lines.append(f"| {ts:%H:%M:%S} | {md_text(source)} | {many}{md_text(kind)}: "
                         f"{md_cell(line(what)[:WHAT_CHARS])} |")
    else:
        lines.append("| | | no recorded events |")
    lines += ["", "## Root cause", ""]
    if roots:
        for i, f in enumerate(roots, 1):
            lines.append(f"{i}. **{md_code(f.title)}**. {md_code(f.detail)}")
    else:
        lines.append("_No candidate in the evidence._")
    lines += ["", "## Actions taken during the incident", ""]
    taken = sorted(((f["ts"], sc["runbook"], f) for sc in ev.sidecars for f in sc["remediation"]),
                   key=lambda item: item[0])
    lines += [f"- {ts:%H:%M:%S} UTC, {md_text(runbook)}: {md_code(f.get('title'))}" for ts, runbook, f in taken] \
        or ["- _None recorded by opsbook (fill in what people did)._"]
    lines += ["", "## Contributing factors", ""]
    lines += [f"- {md_code(f.title)}" for f in other] or ["- _(fill in)_"]
    if ev.missing:
        lines += ["", "## What the evidence could not show", ""] + [f"- {md_code(m)}" for m in ev.missing]
    lines += ["", "## What went well", "", "- _(fill in: what detected it, what helped recovery)_", "",
              "## What went badly", "", "- _(fill in: what slowed detection or recovery)_", "",
              "## Action items", "", "| action | owner | due |", "|---|---|---|"]
    seen = set()
    for f in [*roots, *other]:
        if f.remediation and f.remediation not in seen:
            seen.add(f.remediation)
            lines.append(f"| {md_cell(f.remediation)} | _(owner)_ | _(date)_ |")
    if not seen:
        lines.append("| _(fill in)_ | | |")
    return "\n".join(lines) + "\n"


def messages(*, severity: str, ev, findings, imp: dict) -> dict[str, str]:
    """The three stakeholder messages of guide 004 section 9.7, filled in."""
    roots = [f for f in findings if f.check == "postmortem.root_cause" and not f.skipped]
    cause = line(roots[0].title) if roots else "under investigation"  # shown in <pre>: one clean line
    w = ev.window
    fixes = "; ".join(dict.fromkeys(line(f.remediation) for f in roots[:2] if f.remediation)) or "(fill in)"
    return {
        "incident alert": "\n".join([f"INCIDENT ALERT - {severity}", f"Time: {w.start:%Y-%m-%d %H:%M UTC}",
                                     f"Issue: {cause}",
                                     f"Impact: {imp['statements_failed']} failed statements, "
                                     f"{imp['connections_refused']} refused connections so far",
                                     "ETA: (fill in)", "Status Page: (fill in)"]),
        "recovery update": "\n".join(["RECOVERY UPDATE", f"Time: {w.end:%Y-%m-%d %H:%M UTC}", "Progress: (fill in)",
                                      f"Completed: cause identified: {cause}", f"Remaining: {fixes}",
                                      "Next Update: (fill in)"]),
        "incident resolved": "\n".join(["INCIDENT RESOLVED", f"Time: {w.end:%Y-%m-%d %H:%M UTC}",
                                        f"Duration: {human_seconds(w.duration_s)}", f"Root Cause: {cause}",
                                        f"Actions Taken: {fixes}", "Post-Mortem: attached (draft)"]),
    }
