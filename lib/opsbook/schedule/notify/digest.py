"""One message for all targets of one schedule's slot: a row per target (status, worst, top finding, report), like a
fleet summary, with the targets still being retried said as such."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...core.escape import line
from .message import Message, month_label

EVENT_ORDER = ("failed", "critical", "done")


@dataclass
class Digest:
    schedule: str | None
    runbook: str
    rows: list[Message]
    pending: list[dict[str, Any]] = field(default_factory=list)  # {target, attempt, max_attempts, error}
    test: bool = False

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(sorted({e for r in self.rows for e in r.events}))

    @property
    def event(self) -> str:
        return next((e for e in EVENT_ORDER if e in self.events), "done")

    @property
    def month(self) -> str | None:
        return next((r.month for r in self.rows if r.month), None)

    @property
    def report_html(self) -> str | None:
        return None

    def month_label(self) -> str:
        return month_label(self.month)

    def subject(self) -> str:
        n = len(self.rows) + len(self.pending)
        failed = sum(r.event == "failed" for r in self.rows)
        new = sum(r.event == "critical" and r.news for r in self.rows)
        standing = sum(r.event == "critical" and not r.news for r in self.rows)
        resolved = sum(len(r.resolved) for r in self.rows)
        parts = [f"{failed} FAILED" if failed else "", f"{new} need{'s' if new == 1 else ''} attention" if new else "",
                 f"{standing} still open" if standing else "", f"{len(self.pending)} retrying" if self.pending else "",
                 f"{resolved} resolved" if resolved else ""]
        said = ", ".join(p for p in parts if p) or "all ran, nothing needs attention"
        month = f", {self.month_label()}" if self.month else ""
        return line(f"[opsbook] {self.runbook}{month} on {n} targets: {said}")

    def text(self, config, url_prefix: str | None) -> str:
        """Plain text, one line per target (what others wrote is one clean line each, as in Message.text)."""
        lines = [self.subject(), ""]
        if self.schedule:
            slot = next((r.slot for r in self.rows if r.slot), None)
            lines.append(line(f"schedule {self.schedule}" + (f", slot {slot}" if slot else "")))
        for r in self.rows:
            worst = next((s for s in ("critical", "warning", "info", "ok") if r.counts.get(s)), "ok")
            head = f"- {r.target}: " + (f"ran, worst {worst}" if r.status == "ok" else f"{r.status}: {r.error}")
            top = r.top[0] if r.top else None
            if top:
                since = r.standing.get(top["check"])
                head += f"; {top['check']}: {top['title']}" + (f" (still open since {since})" if since else
                                                                 " (new)" if r.classified else "")
                if len(r.top) > 1:
                    head += f" and {len(r.top) - 1} more"
            if r.resolved:
                head += f"; resolved: {', '.join(f['check'] for f in r.resolved)}"
            where = r.where(config, url_prefix)
            lines.append(line(head + (f" · report: {where}" if where else "")))
        for p in self.pending:
            lines.append(line(f"- {p['target']}: retrying (attempt {p['attempt']} of {p['max_attempts']}): "
                              f"{p.get('error') or ''}"))
        return "\n".join(lines)

    def html(self, config, url_prefix: str | None, attached: set[str] | None = None) -> str:
        from .body import html_body  # noqa: PLC0415

        return html_body(self, config, url_prefix, attached)

    def payload(self, config, url_prefix: str | None) -> dict[str, Any]:
        """The generic JSON body (format = "json"): the digest's counts and one object per target."""
        return {"event": self.event, "events": list(self.events), "digest": True, "schedule": self.schedule,
                "runbook": self.runbook, "month": self.month, "subject": self.subject(),
                "targets": [r.payload(config, url_prefix) for r in self.rows], "retrying": self.pending}
