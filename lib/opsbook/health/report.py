"""The monthly health report's blocks, for a reader who is not a DBA: verdict, headline table, per-section text."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from ..cost.unpriced import NOT_PRICED
from ..core.display import esc, human_bytes, show_html
from .checks_used import CAPACITY, MAINTENANCE, PERFORMANCE
from .headlines import BY_KEY
from .metrics import ReportMetrics, Run
from .month import Month

__all__ = ["CAPACITY", "MAINTENANCE", "PERFORMANCE", "MonthlyReport"]
CHART_MONTHS = 12  # the charts show a year: enough to see a trend, short enough to read each month
_UNKNOWN = object()


def fmt(unit: str, v: float | None) -> str:
    if v is None or v != v:
        return "not measured"
    if unit == "bytes":
        return human_bytes(v)
    if unit == "pct":
        return f"{v:.2f}%"
    if unit == "usd":
        return f"{v:,.2f} USD"
    return f"{v:,.0f}"


def fmt_change(unit: str, change: float | None, pct: float | None) -> str:
    if change is None or change != change:
        return "-"
    sign = "+" if change > 0 else "-" if change < 0 else "±"
    body = fmt(unit, abs(change)) if unit != "pct" else f"{abs(change):.2f} points"
    return f"{sign}{body}" + (f" ({pct:+.0f}%)" if pct is not None and pct == pct and unit != "pct" else "")


class MonthlyReport:
    """What the notebook's cells call: one object over the Runbook, the month, the history and the reports folder."""

    def __init__(self, rb, month: Month):
        from ..history import open_store  # noqa: PLC0415

        self.rb, self.month = rb, month
        self.reports = ReportMetrics(rb.config.reports_dir)
        try:
            self.store = open_store(rb.config, create=False)
        except Exception:  # noqa: BLE001 - no history is said in the report, never a crash
            self.store = None
        self.page = Path(f"{os.environ['OPSBOOK_REPORT_STEM']}.html") if os.environ.get("OPSBOOK_REPORT_STEM") \
            else Path.cwd() / "monthly-health.html"
        self._headlines = None
        self._stats_reset: Any = _UNKNOWN

    @property
    def title(self) -> str:
        """The report's title, month first: what a reader looks for in a list of mails or tabs."""
        return f"Monthly health of {self.rb.target.name}, {self.month.label}"

    # ------------------------------------------------------------------ data
    def months_back(self, n: int = CHART_MONTHS) -> list[Month]:
        """The report month and the n-1 before it, oldest first."""
        out = [self.month]
        while len(out) < n:
            out.insert(0, out[0].previous())
        return out

    def growth_data(self) -> dict[str, Any]:
        """What charts.monthly.growth draws: the size history up to the month's end, and the month."""
        series = None
        if self.store is not None:
            series = self.store.series(self.rb.target.name, "database_size_bytes", self.months_back()[0].start,
                                       self.month.end)
        return {"series": series, "start": self.month.start, "end": self.month.end, "month_label": self.month.label,
                "target": self.rb.target.name}

    def bills(self):
        """DataFrame[month, label, monthly_cost_usd]: each month's newest cost analysis (None where none ran)."""
        import pandas as pd  # noqa: PLC0415

        rows = [{"month": m.key, "label": f"{dt.date(m.year, m.month, 1):%b %Y}",
                 "monthly_cost_usd": self.reports.metric("monthly_cost_usd", "cost-analysis", self.rb.target.name,
                                                         m.start, m.end)} for m in self.months_back()]
        return pd.DataFrame(rows, columns=["month", "label", "monthly_cost_usd"])

    def stats_reset(self) -> dt.datetime | None | bool:
        """When this database's statistics were last reset (a UTC datetime); None: never; False: not known."""
        if self._stats_reset is not _UNKNOWN:
            return self._stats_reset
        self._stats_reset = False
        if self.rb.db is not None:
            try:
                w = self.rb.db.fetch("indexes/stats_window")
                since = w["since_reset_s"].iloc[0] if len(w) else None
                now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
                self._stats_reset = None if since is None or since != since else \
                    now - dt.timedelta(seconds=float(since))
            except Exception:  # noqa: BLE001 - the window stays "not known"; the check says what it could read
                self._stats_reset = False
        return self._stats_reset

    def counters_window(self) -> str:
        """The window of PostgreSQL's cumulative counters, in words: `since statistics reset on 2026-10-02`."""
        when = self.stats_reset()
        if when is False:
            return "since statistics were last reset"
        if when is None:
            return "since statistics began (never reset)"
        return f"since statistics reset on {when:%Y-%m-%d}"

    def judge_cache(self) -> None:
        """cache.hit_ratio on the live counters, each row named with its window (they count since the statistics
        were reset, not over the month the headline table shows); without a connection, as any other check."""
        if self.rb.db is None:
            self.rb.run(PERFORMANCE)
            return
        try:
            df = self.rb.db.fetch("cache/hit_ratio")
        except Exception:  # noqa: BLE001 - the check itself degrades (privilege, timeout) and says why
            self.rb.run(PERFORMANCE)
            return
        total = df["blks_hit"] + df["blks_read"]
        df = df.assign(pct_hit=(100.0 * df["blks_hit"] / total.where(total > 0)).astype("float64"),
                       relation_kind=df["relation_kind"] + " " + self.counters_window())
        self.rb.judge("cache.hit_ratio", df)

    def headlines(self):
        from .headlines import table  # noqa: PLC0415

        if self._headlines is None:
            self._headlines = table(self.store, self.reports, self.rb.target.name, self.month)
        return self._headlines

    def value(self, key: str) -> float | None:
        df = self.headlines()
        v = df.loc[df["key"] == key, "value"]
        return None if not len(v) or v.iloc[0] is None or v.iloc[0] != v.iloc[0] else float(v.iloc[0])

    def latest(self, runbook: str) -> Run | None:
        """The newest successful run of `runbook` on this target up to now (the month's, or the latest since)."""
        return self.reports.latest(runbook, self.rb.target.name)

    def judge_trends(self):
        return self.rb.judge("health.trend", self.headlines())

    def show_trends(self) -> None:
        """health.trend's findings only: the headline table above already shows every number."""
        from ..core.display import findings_html  # noqa: PLC0415

        r = self.rb.results.get("health.trend")
        if r is not None:
            show_html(findings_html(r.findings))

    # ------------------------------------------------------------------ showing
    def link(self, run: Run | None, text: str | None = None) -> str:
        """A link to an earlier report (its HTML; a JupyterLab run has only its sidecar). `reports prune` keeps
        every report a kept report links to, so the link lives as long as this report."""
        if run is None:
            return ""
        label = text or f"{run.runbook} of {run.started:%Y-%m-%d %H:%M} UTC"
        href = run.link_from(self.page) if run.html.exists() else \
            os.path.relpath(run.path, self.page.parent).replace(os.sep, "/")
        return f'<a href="{esc(href)}">{esc(label)}</a>'

    def show_verdict(self) -> None:
        """Three sentences: how the database grew, what it costs, what needs attention."""
        t = self.rb.target.name
        size, growth = self.value("database_size_bytes"), self.value("growth_bytes")
        days = self._days_to_trigger()
        if size is not None:
            first = (f"In {self.month.label}, {t} grew by {fmt('bytes', growth)} to {fmt('bytes', size)}"
                     if growth is not None else f"At the end of {self.month.label}, {t} held {fmt('bytes', size)}")
            first += (f"; at the growth rate of the last {self._window_days()} days it reaches 80% of its "
                      f"tightest limit in about {days:,.0f} days." if days is not None else ".")
        else:
            first = (f"The history store holds no snapshot of {t} in {self.month.label}, so its size and growth "
                     "are not known (run `opsbook snapshot` from cron).")
        cost = self.value("monthly_cost_usd")
        latest_cost = self.latest("cost-analysis")
        if cost is not None:
            df = self.headlines()
            prev = df.loc[df["key"] == "monthly_cost_usd", "previous"].iloc[0]
            of = self.reports.latest("cost-analysis", t, start=self.month.start, before=self.month.end)
            second = (f"The estimated monthly bill is {fmt('usd', cost)}"
                      + (f" (cost analysis of {of.started:%Y-%m-%d})" if of is not None else "")) + (
                f" ({fmt_change('usd', cost - prev, 100 * (cost - prev) / prev if prev else None)} on the month "
                "before)." if prev is not None and prev == prev else " (no estimate for the month before).")
        elif (run := self.reports.latest("cost-analysis", t, start=self.month.start, before=self.month.end)
              or latest_cost) is not None and "monthly_cost_usd" not in run.metrics:
            second = (f"The cost analysis of {run.started:%Y-%m-%d} computed no bill: {NOT_PRICED}; set plan for "
                      "this target in opsbook.toml to price it.")
        elif latest_cost is not None:
            second = (f"No cost analysis ran in {self.month.label}; the latest one "
                      f"({latest_cost.started:%Y-%m-%d}) estimated {fmt('usd', latest_cost.metrics['monthly_cost_usd'])}"
                      " a month.")
        else:
            second = "No cost analysis has run for this target yet (`opsbook run cost-analysis`)."
        serious = [f for f in self.rb.findings if f.severity.rank >= 2]
        if serious:
            worst = sorted(serious, key=lambda f: -f.severity.rank)[:3]
            third = (f"{len(serious)} thing{'s' if len(serious) != 1 else ''} need{'' if len(serious) != 1 else 's'} "
                     "attention, first: " + "; ".join(f.title for f in worst) + ".")
        else:
            third = "Nothing needs attention this month."
        colour = {3: "#b42318", 2: "#b54708"}.get(max((f.severity.rank for f in self.rb.findings), default=0),
                                                  "#067647")
        show_html(f'<div class="ob-verdict" style="border-color:{colour}"><p>{esc(first)}</p><p>{esc(second)}</p>'
                  f"<p>{esc(third)}</p></div>")

    def _window_days(self) -> int:
        return int(self.rb.params.get("window_days", 90))

    def _days_to_trigger(self) -> float | None:
        fc = self.rb.data("storage.growth_forecast")
        if fc is None or not len(fc) or "days_to_trigger" not in fc:
            return None
        days = fc["days_to_trigger"].dropna()
        return float(days.min()) if len(days) else None

    def show_headlines(self) -> None:
        df = self.headlines()
        rows = "".join(
            f"<tr><td>{esc(r.label)}</td><td class=\"num\">{esc(fmt(r.unit, r.value))}</td>"
            f"<td class=\"num\">{esc(fmt(r.unit, r.previous))}</td>"
            f"<td class=\"num\">{esc(fmt_change(r.unit, r.change, r.change_pct))}</td></tr>" for r in df.itertuples())
        show_html(f'<table class="ob-table"><thead><tr><th>headline</th><th>{esc(self.month.label)}</th>'
                  f"<th>{esc(self.month.previous().label)}</th><th>change</th></tr></thead><tbody>{rows}</tbody>"
                  f'</table><p class="ob-muted">Months run from midnight on the 1st, {esc(self.month.zone)}.</p>')

    def show_chart_gaps(self) -> None:
        """What the two charts above could not draw, and why."""
        gaps = []
        series = self.growth_data()["series"]
        if series is None or len(series) < 2:
            gaps.append("No growth chart: the history holds fewer than two snapshots of "
                        f"{self.rb.target.name} (run `opsbook snapshot` from cron).")
        if self.bills()["monthly_cost_usd"].isna().all():
            gaps.append(f"No bill chart: no cost analysis of {self.rb.target.name} in the last {CHART_MONTHS} months.")
        if gaps:
            show_html("".join(f'<p class="ob-muted">{esc(g)}</p>' for g in gaps))

    def show_counters_window(self) -> None:
        """One line: PostgreSQL's counters in the checks below count over another window than the month; and the
        month's query tuning, where one ran (the performance section shows this line)."""
        show_html(f'<p class="ob-muted">Counters read live (cache hits, index scans) count '
                  f"{esc(self.counters_window())}, not over {esc(self.month.label)}.</p>" + self.tuning_line())

    def tuning_line(self) -> str:
        """The newest query-tuning run since the month began (a scheduled one runs just after the month, in the same
        slot as this report), in one linked sentence; empty when none ran."""
        run = self.reports.latest("query-tuning", self.rb.target.name, start=self.month.start)
        if run is None:
            return ""
        n, best = run.metrics.get("tuning_indexes_proposed"), run.metrics.get("tuning_best_saving_pct")
        if not isinstance(n, (int, float)) or isinstance(n, bool):
            return f"<p>{self.link(run, f'query tuning of {run.started:%Y-%m-%d}')} recorded no proposal count.</p>"
        said = f"proposes {int(n)} index{'es' if int(n) != 1 else ''}" if n else "proposes no index"
        if n and isinstance(best, (int, float)) and not isinstance(best, bool):
            said += f", the best saves {best:.0f}% of the planned cost of its statements"
        return f"<p>{self.link(run, f'query tuning of {run.started:%Y-%m-%d}')} {esc(said)}.</p>"

    def show_run(self, runbook: str, what: str, keys: tuple[str, ...] = ()) -> None:
        """The latest run of another runbook: its date, status, counts, chosen metrics and a link."""
        run = self.latest(runbook)
        if run is None:
            show_html(f'<p class="ob-muted">No {esc(runbook)} report for {esc(self.rb.target.name)} yet: {esc(what)} '
                      f'(<code>opsbook run {esc(runbook)} --target {esc(self.rb.target.name)}</code>).</p>')
            return
        c = run.counts()
        tally = ", ".join(f"{n} {s}" for s, n in c.items() if n and s in ("critical", "warning")) or \
            "no warning or critical finding"
        when = "this month" if self.month.contains(run.started) else (
            "after the month" if run.started >= self.month.end else "before the month")
        facts = "".join(f"<li>{esc(k.replace('_', ' '))}: {esc(_metric(k, run.metrics[k]))}</li>"
                        for k in keys if k in run.metrics)
        show_html(f"<p>Latest {esc(runbook)}: {self.link(run)} ({esc(when)}): {esc(tally)}.</p>"
                  + (f"<ul>{facts}</ul>" if facts else ""))

    def show_incidents(self) -> None:
        """The month's incidents (triage and post-mortem runs a person started), each linked; the scheduled or
        fleet triage runs (routine checks) counted apart, the newest linked."""
        every = [r for rb in ("incident-triage", "post-mortem") for r in
                 self.reports.runs(runbook=rb, target=self.rb.target.name, start=self.month.start, end=self.month.end)]
        runs = [r for r in every if r.by_a_person]
        routine = [r for r in every if not r.by_a_person]
        markup = ""
        if runs:
            items = []
            for r in sorted(runs, key=lambda r: r.started):
                p = r.metrics.get("incident_priority")
                prio = f"P{int(p)}" if isinstance(p, (int, float)) else ""
                items.append(f"<li>{self.link(r)} {esc(prio)} {esc(r.status if r.status != 'ok' else '')}</li>")
            markup += (f"<p>{len(runs)} incident run{'s' if len(runs) != 1 else ''} (started by a person) in "
                       f"{esc(self.month.label)}:</p><ul>{''.join(items)}</ul>")
        else:
            markup += (f'<p class="ob-muted">No incident-triage or post-mortem run started by a person on '
                       f"{esc(self.rb.target.name)} in {esc(self.month.label)}.</p>")
        if routine:
            by = sorted({r.started_by or "" for r in routine})
            markup += (f"<p>{len(routine)} scheduled incident-triage run{'s' if len(routine) != 1 else ''} "
                       f"(started by {esc(' and '.join(by))}: routine checks, not counted as incidents); the newest: "
                       f"{self.link(routine[-1])}.</p>")
        show_html(markup)

    def top_statements(self, n: int = 5):
        """The month's top statements by total execution time, with last month's figures beside them."""
        import pandas as pd  # noqa: PLC0415

        cols = ["query", "calls", "total_exec_time_ms", "mean_exec_time_ms", "previous_total_exec_time_ms"]
        if self.store is None:
            return pd.DataFrame(columns=cols)
        t = self.rb.target.name
        now = self.store.statement_deltas(t, self.month.start, self.month.end)
        before = self.store.statement_deltas(t, self.month.previous().start, self.month.start)
        if not len(now):
            return pd.DataFrame(columns=cols)
        prev = before.set_index(["queryid", "role"])["total_exec_time_ms"] if len(before) else pd.Series(dtype=float)
        top = now.head(n).copy()
        top["previous_total_exec_time_ms"] = [prev.get((q, r)) for q, r in zip(top["queryid"], top["role"])]
        return top[cols]

    def record(self) -> dict[str, Any]:
        out = {f"month_{k}": v for k, v in zip(self.headlines()["key"], self.headlines()["value"])
               if v is not None and v == v}
        out["month_serious_findings"] = sum(1 for f in self.rb.findings if f.severity.rank >= 2)
        for name, value in out.items():
            self.rb.record(name, value)
        return out


def _metric(key: str, v: Any) -> str:
    if key.endswith("_bytes") and isinstance(v, (int, float)):
        return human_bytes(v)
    if key.endswith("_hours") and isinstance(v, (int, float)):
        return f"{v:,.1f} h"
    if key.endswith("_seconds") and isinstance(v, (int, float)):
        return f"{v:,.1f} s"
    if key.endswith("_usd") and isinstance(v, (int, float)):
        return f"{v:,.2f} USD"
    return f"{v:,}" if isinstance(v, int) else str(v)


def headline(key: str) -> str:
    return BY_KEY[key].label
