"""What the post-mortem notebook's cells call: gather once, then show each section and record the numbers."""
from __future__ import annotations

from html import escape

import pandas as pd

from ...core import display
from ...report import record as runrecord
from ...core.findings import Severity
from . import causes, document, timeline
from .evidence import Evidence, gather
from ...config.when import is_relative
from .window import Window, check_severity, make_window, recorded_window

LOG_KINDS = ("error", "fatal", "panic", "deadlock", "lock_wait", "statement_timeout", "too_many_connections",
             "temp_file", "checkpoint", "autovacuum", "autoanalyze", "authentication_failed", "slow_statement")
CHECKS = ("postmortem.root_cause", "postmortem.errors", "postmortem.lock_waits", "postmortem.connections",
          "postmortem.timeouts")


def default_log_path(target) -> str:
    """The target's `log_path` in opsbook.toml; else the embedded server's own log for the demo target; else none."""
    configured = (getattr(target, "extra", None) or {}).get("log_path")
    if configured:
        return str(configured)
    if getattr(target, "embedded", False):
        from ...database.embedded import default_server  # noqa: PLC0415

        return str(default_server().log_file)
    return ""


class PostMortem:
    """pm = PostMortem(rb, incident_start="now-2h", incident_end="now", log_path="", ...); pm.judge(); ..."""

    def __init__(self, rb, *, incident_start: str, incident_end: str, log_path: str = "", title: str = "",
                 severity: str = "P2", padding_minutes: float = 30, baseline_days: float = 7,
                 log_line_prefix: str = ""):
        self.rb = rb
        self._when = (incident_start, incident_end, padding_minutes)
        self.window = make_window(*self._when)  # bad times fail here, before anything is read
        self.severity = check_severity(severity)
        self.title = title or f"{rb.target.name} incident of {self.window.start:%Y-%m-%d %H:%M} UTC"
        from ...config.paths import user_path  # noqa: PLC0415 - relative to where `opsbook run` was typed

        self.log_path = str(user_path(log_path)) if log_path else default_log_path(rb.target)
        self.prefix = log_line_prefix or None
        self.baseline_days = baseline_days
        self.ev: Evidence | None = None

    def gather(self) -> Evidence:
        """Read the history store, the log and the sidecars of the window (once)."""
        rb = self.rb
        self.window = make_window(*self._when)  # `now` is now: the demo may have just recorded its incident
        self.window = demo_window(rb, self.window, self._when)
        prefix, origin, zone = self.prefix, "the log_line_prefix parameter", None
        if self.log_path and rb.db is not None:
            from ...logs import show_prefix, show_timezone  # noqa: PLC0415

            if prefix is None:
                prefix, origin = show_prefix(_Shim(rb.db)), "SHOW log_line_prefix on the target"
            zone = show_timezone(_Shim(rb.db))  # CEST, EDT, MSK... in the log's timestamps read in the server's zone
        self.ev = gather(rb.config, rb.target.name, self.window, log_path=self.log_path,
                         baseline_days=self.baseline_days, prefix=prefix, prefix_origin=origin, log_timezone=zone)
        self.candidates = causes.candidates(self.ev)
        self.samples = timeline.sample_series(self.ev)
        self.logs = timeline.log_series(self.ev)
        self.events = timeline.events_table(self.ev)
        self.impact = document.impact(self.ev, [])
        return self.ev

    # ------------------------------------------------------------------ judging
    def judge(self) -> None:
        if self.ev is None:
            self.gather()
        data = {"evidence": self.ev, "candidates": self.candidates}
        for cid in CHECKS:
            self.rb.judge(cid, data)

    @property
    def findings(self):
        return [f for f in self.rb.findings if f.check.startswith("postmortem.")]

    # ------------------------------------------------------------------ showing
    def show_evidence(self) -> None:
        ev = self.ev
        ok = len(ev.ok_samples)
        w = self.window
        rows = [("incident window", w.text() + (f" ({w.origin})" if w.origin else "")),
                ("with context", f"{w.before:%H:%M:%S} to {w.after:%H:%M:%S} UTC ({w.padding_text()} padding)"),
                ("activity samples", f"{ok} ({len(timeline.gaps(ev))} gap(s))" if ev.samples else "none"),
                ("snapshots", str(0 if ev.snapshots is None else len(ev.snapshots))),
                ("server log", ", ".join(ev.log.files[:4]) + (f" (+{len(ev.log.files) - 4})"
                                                              if len(ev.log.files) > 4 else "")
                 if ev.log.files else "none"),
                *([("log line prefix", ev.log.prefix_text)] if ev.log.prefix_text else []),
                ("opsbook runs in the period", str(len(ev.sidecars)))]
        html = "<table>" + "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(v)}</td></tr>"
                                   for k, v in rows) + "</table>"
        if ev.missing:
            html += ("<p><b>Missing, so this post-mortem cannot show it:</b></p><ul>"
                     + "".join(f"<li>{escape(m)}</li>" for m in ev.missing) + "</ul>")
        if ev.log.left_out:
            html += ("<p><b>Left out on purpose:</b></p><ul>"
                     + "".join(f"<li>{escape(p)}</li>" for p in ev.log.left_out) + "</ul>")
        if ev.log.how_read:
            html += ("<p><b>How the log was read:</b></p><ul>"
                     + "".join(f"<li>{escape(p)}</li>" for p in ev.log.how_read) + "</ul>")
        if ev.log.problems:
            html += ("<p><b>Parts of the log not read:</b></p><ul>"
                     + "".join(f"<li>{escape(p)}</li>" for p in ev.log.problems[:10]) + "</ul>")
        display.show_html(html)

    def timeline_figure(self):
        from ...report.charts.postmortem import timeline as chart  # noqa: PLC0415

        fig = chart(self.samples, self.logs, self.window)
        # each log bar covers its bucket (a minute, or a second for a window of seconds), from its start
        step = self.ev.log.bucket_s
        fig.update_traces(width=step * 1000, offset=0, selector={"type": "bar", "xaxis": "x3"})
        if step != 60:
            fig.for_each_annotation(lambda a: a.update(text=a.text.replace("per minute", "per second")))
        return fig

    def show_events(self, max_rows: int = 150) -> None:
        if self.events.empty:
            display.show_html('<p class="ob-muted">No event in the period: no samples, no log lines, no runs.</p>')
            return
        df = self.events.copy()
        df["ts"] = df["ts"].map(lambda t: t.strftime("%H:%M:%S.%f")[:-3])
        df["in_window"] = df["in_window"].map(lambda x: "yes" if x else "")
        display.show_html(display.table_html(df, max_rows=max_rows))

    def what_changed(self, top: int = 10) -> pd.DataFrame:
        """Statements by total time in the window beside their baseline rate (per hour), new ones marked."""
        w, b = self.ev.statements, self.ev.baseline_statements
        if w is None or len(w) == 0:
            return pd.DataFrame()
        hours = max(self.window.duration_s + 2 * self.window.padding.total_seconds(), 1) / 3600
        out = w.head(top)[["queryid", "query", "calls", "total_exec_time_ms"]].copy()
        out["calls_per_h"] = out["calls"] / hours
        if b is not None and len(b) and self.ev.baseline_hours > 0:
            base = b.set_index("queryid")
            out["baseline_calls_per_h"] = out["queryid"].map(base["calls"] / self.ev.baseline_hours)
            out["new"] = out["baseline_calls_per_h"].isna().map(lambda x: "new" if x else "")
        out["query"] = out["query"].map(lambda q: _redact(q)[:160] if isinstance(q, str) else q)
        return out.drop(columns=["queryid"])

    def show_changes(self) -> None:
        df = self.what_changed()
        if df.empty:
            display.show_html('<p class="ob-muted">No statement statistics for the window (two snapshots around '
                              'it and pg_stat_statements are needed).</p>')
        else:
            display.show_html(display.table_html(df))
        new_errors = [e for e in self.ev.log.events if self.window.inside(e.ts) and e.kind == "error"]
        if new_errors:
            msgs: dict[str, int] = {}
            for e in new_errors:
                msgs[e.message[:160]] = msgs.get(e.message[:160], 0) + 1
            display.show_html("<p><b>Errors in the window:</b></p>" + display.table_html(pd.DataFrame(
                sorted(msgs.items(), key=lambda kv: -kv[1]), columns=["message", "count"])))

    def show_impact(self) -> None:
        imp = document.impact(self.ev, self.findings)
        self.impact = imp
        display.show_html(display.table_html(pd.DataFrame([imp])))

    def write_document(self) -> str:
        md = document.document(title=self.title, severity=self.severity, target=self.rb.target.name, ev=self.ev,
                               findings=self.findings, imp=document.impact(self.ev, self.findings),
                               timeline=self.events)
        path = runrecord.artifact_path(".md")
        path.write_text(md)
        self.document_path = path
        return md

    def show_document(self) -> None:
        from ...report.cells import document_html  # noqa: PLC0415

        md = self.write_document()
        display.show_html(f"<p>Written beside this report as <code>{escape(self.document_path.name)}</code> "
                          f"(Markdown, for a wiki or an issue):</p><div class='ob-document'>{document_html(md)}</div>"
                          f"<details><summary>The Markdown source</summary><pre style='white-space:pre-wrap'>"
                          f"{escape(md)}</pre></details>")

    def show_messages(self) -> None:
        msgs = document.messages(severity=self.severity, ev=self.ev, findings=self.findings,
                                 imp=document.impact(self.ev, self.findings))
        display.show_html("".join(f"<p><b>{escape(k.title())}</b></p><pre>{escape(v)}</pre>" for k, v in msgs.items()))

    def record(self) -> dict:
        counts = self.ev.log.counts
        out = {f"log_{k}_count": counts.get(k, 0) for k in LOG_KINDS} if self.ev.log.read else {}
        out["incident_duration_s"] = round(self.window.duration_s, 1)
        out["blocked_sessions_max"] = max((s.get("waiting") or 0 for s in self.ev.ok_samples
                                           if self.window.inside(timeline_dt(s["ts"]))), default=0)
        out["activity_samples"] = len(self.ev.ok_samples)
        out["root_cause_candidates"] = len([f for f in self.findings if f.check == "postmortem.root_cause"
                                            and f.severity is not Severity.OK and not f.skipped
                                            and f.title != "no root-cause candidate in the evidence"])
        for k, v in out.items():
            runrecord.record(k, v)
        return out


def demo_window(rb, window, when: tuple) -> Window:
    """On the demo target, a window given relative to now (`now-10m` to `now`, the demo's parameters) that holds
    the demo's recorded incident becomes that incident's own window, padded by seconds: the asked window also
    holds the demo's build and the other runbooks' runs. Times the user named are kept as given."""
    if not getattr(rb.target, "embedded", False) or not all(is_relative(t) for t in when[:2]):
        return window
    from .recorded import DEMO_NOTE, PADDING_S, recorded_between  # noqa: PLC0415

    found = recorded_between(window.start.timestamp(), window.end.timestamp(), rb.config.history_url)
    if found is None:
        return window
    return recorded_window(*found, PADDING_S, f"{DEMO_NOTE}; asked: {when[0]} to {when[1]}")


def timeline_dt(epoch: float):
    from datetime import datetime, timezone  # noqa: PLC0415

    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _redact(q: str) -> str:
    from ...logs.redaction import redact_text  # noqa: PLC0415

    return redact_text(q) or ""


class _Shim:
    """show_prefix() wants .execute(sql).fetchone(); the Session's SQLAlchemy connection has exec_driver_sql."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql):
        with self.db.unit():
            return self.db.conn.exec_driver_sql(sql)
