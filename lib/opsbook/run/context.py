"""The object a runbook's cells talk to: connect once, run checks, show sections, record numbers."""
from __future__ import annotations

import time
from typing import Any, Iterable

from . import cellcheck, interactive
from ..core import display
from ..report import record as runrecord
from .. import checks as checkreg
from ..checks.registry import lost_finding
from ..config.file import Config, load
from ..core.errors import ConnectError, UsageError
from ..core.findings import Finding, by_severity, counts, gaps, worst


def gaps_html(findings: list[Finding]) -> str:
    """The verdict's line(s) saying the result is incomplete, and why; empty when nothing is missing."""
    lines = gaps(findings)
    if not lines:
        return ""
    items = "".join(f"<li>{display.esc(line)}</li>" for line in lines)
    return (f'<div class="ob-verdict ob-gaps" style="border-color:{display.COLORS["warning"]}">'
            f"<b>This result is incomplete</b><ul style=\"margin:.2em 0\">{items}</ul></div>")


# What a Runbook made stale by a later bad setup refuses (see cellcheck.quiet): everything that reads or shows.
_GUARDED = frozenset({"connect", "run", "judge", "thresholds_for", "record", "data", "connected", "db", "worst",
                      "counts", "verdict", "show_box", "section"})


class Runbook:
    """One run of one runbook against one target.

    rb = Runbook("incident-triage", target="demo", thresholds=thresholds)
    rb.connect(); rb.run(["connections.saturation", ...]); rb.verdict(); rb.section("connections.saturation")

    In a notebook kernel (JupyterLab) creating it checks the parameters cell as `opsbook run` checks `-p` and
    stops with the same one line; every cell can be re-run after the last (a closed session reopens on use).
    """

    def __init__(self, name: str, target: str = "demo", *, thresholds: dict[str, dict] | None = None,
                 params: dict[str, Any] | None = None, config: Config | None = None,
                 statement_timeout_ms: int = 30_000, connect_timeout_s: int = 5):
        self.name = name
        notebook = cellcheck.in_notebook()
        try:
            self.config = config or load()
            if notebook:
                cellcheck.check_parameters(name, target, self.config)
            self.target = self.config.target(target)
        except UsageError as e:
            if not notebook:
                raise
            raise cellcheck.quiet(e) from None
        self.params = dict(params or {})
        self.overrides = dict(thresholds or {})
        self.statement_timeout_ms = statement_timeout_ms
        self.connect_timeout_s = connect_timeout_s
        self._db = None
        self._closed = False  # close() was called: the next use opens a new session
        self.connect_error: ConnectError | None = None
        self.lost: str | None = None  # how the session died mid-run, if it did
        self.results: dict[str, checkreg.CheckResult] = {}
        self.findings: list[Finding] = []
        self.started = time.time()
        self.measured_at: float | None = None  # when the last check's result came in
        if notebook:
            cellcheck.track(self)
        interactive.attach(self)  # in JupyterLab, a new run: it leaves a sidecar of its own

    # ------------------------------------------------------------------ doing
    def connect(self):
        """Open the read-only session; a failure becomes the `connectivity.unreachable` finding."""
        from ..checks.connectivity import attempt  # noqa: PLC0415

        self.db, self.connect_error, df = attempt(self.target, connect_timeout_s=self.connect_timeout_s,
                                                  statement_timeout_ms=self.statement_timeout_ms)
        result = checkreg.run_check(checkreg.get("connectivity.unreachable"), self._ctx(),
                                    self.thresholds_for("connectivity.unreachable"), data=df)
        self._keep(result)
        if self.db is not None:
            runrecord.record_meta(server_version_num=self.db.server_version_num, server_version=self.db.server_version)
            from ..checks.standby import standby_of  # noqa: PLC0415

            try:
                standby = standby_of(self.db)  # every report's header says when the target is a standby
            except Exception:  # noqa: BLE001 - a tiny statement_timeout, a lost session: unknown, the checks say why
                standby = False
            if standby is not False:
                runrecord.record_meta(in_recovery=standby is not None,
                                      primary=standby.primary if standby is not None else None)
                runrecord.record("in_recovery", standby is not None)  # the sidecar's keys are a contract: a metric
            role = self.run(["connectivity.role"]).get("connectivity.role")
            if role is not None and role.data is not None and len(role.data):
                r = role.data.iloc[0]
                runrecord.record_meta(role=str(r["role_name"]), superuser=bool(r["superuser"]))
        return self.db

    def run(self, check_ids: Iterable[str]) -> dict[str, checkreg.CheckResult]:
        """Run checks in order. Without a connection they are not run (the unreachable finding says why); when
        the session dies mid-run, the check that met it and every later one get a `connection lost` finding,
        and none runs against the dead session."""
        if self.db is None and self.connect_error is None and self.lost is None:
            self.connect()
        out = {}
        for cid in check_ids:
            if self.lost is not None:
                out[cid] = self._keep(checkreg.CheckResult(checkreg.get(cid), None,
                                                           [lost_finding(cid, self.lost, cut_off=True)],
                                                           0.0, {}))
                continue
            if self.db is None:
                continue
            out[cid] = self._keep(checkreg.run_check(checkreg.get(cid), self._ctx(), self.thresholds_for(cid)))
            if out[cid].lost is not None:
                self._lose(out[cid].lost, cid)
        return out

    def judge(self, check_id: str, data: Any) -> checkreg.CheckResult:
        """Judge data gathered outside SQL (files, tool output) as the check `check_id`: thresholds resolved
        and findings kept and recorded like any other check's."""
        return self._keep(checkreg.run_check(checkreg.get(check_id), self._ctx(), self.thresholds_for(check_id),
                                             data=data))

    def thresholds_for(self, check_id: str) -> dict[str, Any]:
        check = checkreg.get(check_id)
        return check.resolve_thresholds(self.config.thresholds_for(check_id, self.target),
                                        self.overrides.get(check_id))

    def record(self, name: str, value: Any) -> Any:
        return runrecord.record(name, value)

    def data(self, check_id: str):
        r = self.results.get(check_id)
        return None if r is None else r.data

    # ------------------------------------------------------------------ showing
    def __getattribute__(self, name: str) -> Any:
        if name in _GUARDED:
            stale = object.__getattribute__(self, "__dict__").get("stale")
            if stale is not None:
                raise stale
        return object.__getattribute__(self, name)

    @property
    def db(self):
        """The session; after close() a new one is opened on first use (a cell re-run after the last)."""
        if self._db is None and self._closed:
            self._reopen()
        return self._db

    @db.setter
    def db(self, session) -> None:
        self._db, self._closed = session, False

    @property
    def connected(self) -> bool:
        """True only with an open session (reopened if close() ended the last one)."""
        return self.db is not None

    def worst(self):
        return worst(self.findings)

    def counts(self) -> dict[str, int]:
        return counts(self.findings)

    def verdict(self, headline: str = "", top: int = 8) -> None:
        """The summary at the top: worst first, counts by severity, what keeps the result from being complete,
        the top findings that need action."""
        serious = [f for f in by_severity(self.findings) if f.severity.rank >= 2]
        display.show_html(display.summary_html(self.findings, headline, measured_at=self.measured_at)
                          + gaps_html(self.findings)
                          + display.findings_html((serious or by_severity(self.findings))[:top], show_ok=False))

    def show_box(self, box) -> None:
        """A runbook's own verdict box (`box(findings) -> html`), with the time the findings were measured."""
        display.show_html(display.with_measured_at(box(self.findings), self.measured_at))

    def section(self, check_id: str, *, columns: list[str] | None = None, max_rows: int = 25) -> None:
        """One check's findings, then its rows."""
        r = self.results.get(check_id)
        if r is None:
            why = ("the connection was lost before it" if self.lost is not None else
                   "the database could not be reached" if self.db is None else "this check was not run")
            display.show_html(f'<p class="ob-muted">{display.esc(check_id)}: not run: {why}.</p>')
            return
        markup = display.findings_html(r.findings)
        if r.data is not None and hasattr(r.data, "columns") and (len(r.data) or not r.findings):
            markup += display.table_html(r.data, max_rows=max_rows, columns=columns)  # no rows: the findings say
        display.show_html(markup)

    def close(self) -> None:
        """End the session (and, in JupyterLab, the run: its sidecar is written); a later call that needs the
        session opens a new one."""
        interactive.closed(self)
        dead, self._db = self._db, None
        if dead is not None:
            self._closed = True
            dead.close()

    def _reopen(self) -> None:
        """A new session after close(), without new findings: the run's connectivity result stands. When the
        database no longer answers, the session stays closed (`connected` is False) and checks are not run."""
        from ..checks.connectivity import attempt  # noqa: PLC0415

        self._closed = False
        self._db, error, _ = attempt(self.target, connect_timeout_s=self.connect_timeout_s,
                                     statement_timeout_ms=self.statement_timeout_ms)
        if error is not None:
            self.connect_error = error

    # ------------------------------------------------------------------ internals
    def _ctx(self) -> checkreg.CheckContext:
        return checkreg.CheckContext(db=self.db, target=self.target, params=self.params, config=self.config)

    def _lose(self, how: str, check_id: str) -> None:
        """The session died during `check_id`: drop it, and say whether the server still answers (a fresh
        connection attempt): gone is connectivity.unreachable critical, answering again a warning."""
        from ..checks.connectivity import lost_probe  # noqa: PLC0415

        self.lost = how
        dead, self.db = self.db, None
        try:
            dead.close()
        except Exception:  # noqa: BLE001, S110 - it is dead already; closing is only tidying up
            pass
        df = lost_probe(self.target, how, check_id, connect_timeout_s=min(self.connect_timeout_s, 3))
        self._keep(checkreg.run_check(checkreg.get("connectivity.unreachable"), self._ctx(),
                                      self.thresholds_for("connectivity.unreachable"), data=df))

    def _keep(self, result: checkreg.CheckResult) -> checkreg.CheckResult:
        self.measured_at = time.time()
        self.results[result.check.id] = result
        self.findings.extend(result.findings)
        runrecord.record_findings(result.findings)
        return result
