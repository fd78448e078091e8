"""What a notification says: what ran where, how it ended, the counts and top findings, where the report is."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ...core.escape import line

SEVERITIES = ("critical", "warning", "info", "ok")
TOP_FINDINGS = 5


@dataclass
class Message:
    """One notification, before it is shaped for a webhook or a mail."""

    event: str  # the most serious of the run's events: failed > critical > done
    events: tuple[str, ...]
    schedule: str | None
    runbook: str
    target: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    top: list[dict[str, Any]] = field(default_factory=list)
    report_html: str | None = None  # a local path
    error: str | None = None
    attempt: int | None = None
    test: bool = False
    month: str | None = None  # YYYY-MM of a monthly report (the sidecar's `month` parameter)
    verdict: list[str] = field(default_factory=list)  # the report's verdict sentences, plain text
    # set by the dispatcher from what was announced before (state.py): check -> "YYYY-MM-DD" it has been open since,
    # the findings that cleared, and whether anything at or above fail_on is new
    standing: dict[str, str] = field(default_factory=dict)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    news: bool = True
    classified: bool = False  # compared with what was announced before: unmarked findings are new
    slot: str | None = None  # the slot on the schedule's clock, "YYYY-MM-DD HH:MM TZ"

    @classmethod
    def from_run(cls, config, *, schedule: str | None, runbook: str, target: str, status: str, events: set[str],
                 sidecar: dict[str, Any] | None, report: str | None, error: str | None = None,
                 attempt: int | None = None) -> "Message":
        findings = [f for f in (sidecar or {}).get("findings", []) if isinstance(f, dict)]
        counts = dict.fromkeys(SEVERITIES, 0)
        for f in findings:
            if f.get("severity") in counts:
                counts[f["severity"]] += 1
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        serious = sorted((f for f in findings if f.get("severity") in ("critical", "warning")),
                         key=lambda f: rank[f["severity"]])
        top = [{"severity": f["severity"], "check": f.get("check"), "title": f.get("title")}
               for f in serious[:TOP_FINDINGS]]
        html = str(Path(report).with_suffix(".html")) if report else None
        event = next(e for e in ("failed", "critical", "done") if e in events)
        from .report_page import verdict  # noqa: PLC0415

        return cls(event, tuple(sorted(events)), schedule, runbook, target, status, counts, top, html,
                   error or (sidecar or {}).get("error"), attempt, month=month_of(sidecar),
                   verdict=verdict(html) if html and status == "ok" else [])

    @property
    def rows(self) -> list["Message"]:
        return [self]

    def month_label(self) -> str:
        return month_label(self.month)

    def what(self) -> str:
        """The run's news in two or three words (failed; something new; only what was open before; a report)."""
        if self.event == "failed":
            return "FAILED"
        if self.event == "critical":
            return "needs attention" if self.news else "still open"
        return "report ready"

    def where(self, config, url_prefix: str | None) -> str | None:
        """The report as a URL under `url_prefix` (reports served or synced), else its local path."""
        if not self.report_html:
            return None
        if not url_prefix:
            return self.report_html
        root = Path(config.reports_dir).absolute()
        try:
            rel = Path(self.report_html).absolute().relative_to(root).as_posix()
        except ValueError:
            rel = os.path.basename(self.report_html)
        return url_prefix.rstrip("/") + "/" + quote(rel)  # a name with a space or `>` stays one working URL

    def subject(self) -> str:
        if self.test:
            return "[opsbook test] notifications from opsbook reach you here"
        tally = ", ".join(f"{n} {s}" for s, n in self.counts.items() if n and s in ("critical", "warning"))
        month = f", {self.month_label()}" if self.month else ""
        cleared = f"; {len(self.resolved)} resolved" if self.resolved else ""
        return line(f"[opsbook] {self.runbook} on {self.target}{month}: {self.what()}"
                    + (f" ({tally})" if tally else "") + cleared)

    def text(self, config, url_prefix: str | None) -> str:
        """Plain text; what others wrote (names, titles, the error) is one clean line each, so it cannot forge a
        line of its own (a fake `report:`) or hide behind control and bidi characters. Slack escaping is the
        sender's."""
        if self.test:
            return (f"{self.subject()}\n\nThis is a test sent by `opsbook notify test`. Scheduled runs will tell "
                    "you here when a report is ready, when it finds something serious, and when a run failed, as "
                    "this notifier's `on` list says.")
        lines = [self.subject(), ""]
        lines.append(line(f"runbook {self.runbook}, target {self.target}"
                          + (f", schedule {self.schedule}" if self.schedule else "")
                          + (f", attempt {self.attempt}" if self.attempt and self.attempt > 1 else "")))
        lines.append(f"status: {'ran' if self.status == 'ok' else self.status}")
        if self.error:
            lines.append(f"error: {line(self.error)}")
        tally = " · ".join(f"{s} {n}" for s, n in self.counts.items() if n)
        lines += [line(s) for s in self.verdict]
        lines.append(f"findings: {tally or 'none'}")
        for f in self.top:
            since = self.standing.get(f["check"])
            lines.append(line(f"- {f['severity']}: {f['check']}: {f['title']}"
                              + (f" (still open since {since})" if since else " (new)" if self.classified else "")))
        for f in self.resolved:
            lines.append(line(f"- resolved: {f['check']}: {f['title']} (open since {f['since']})"))
        where = self.where(config, url_prefix)
        if where:
            lines.append(f"report: {line(where)}")
        return "\n".join(lines)

    def html(self, config, url_prefix: str | None, attached: set[str] | None = None) -> str:
        from .body import html_body  # noqa: PLC0415

        return html_body(self, config, url_prefix, attached)

    def payload(self, config, url_prefix: str | None) -> dict[str, Any]:
        """The generic JSON body (format = "json")."""
        return {"event": self.event, "events": list(self.events), "schedule": self.schedule,
                "runbook": self.runbook, "target": self.target, "status": self.status, "counts": self.counts,
                "top_findings": self.top, "report": self.where(config, url_prefix), "error": self.error,
                "attempt": self.attempt, "test": self.test, "month": self.month, "verdict": self.verdict,
                "standing": self.standing, "resolved": self.resolved}


def month_of(sidecar: dict[str, Any] | None) -> str | None:
    """A monthly report's month, `YYYY-MM`, from the sidecar's parameters (a schedule passes it); else None."""
    m = ((sidecar or {}).get("parameters") or {}).get("month")
    return m if isinstance(m, str) and re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", m) else None


def month_label(month: str | None) -> str:
    """`2026-11` as `November 2026`."""
    if not month:
        return ""
    import calendar  # noqa: PLC0415

    year, mon = month.split("-")
    return f"{calendar.month_name[int(mon)]} {year}"
