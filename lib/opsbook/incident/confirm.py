"""Remediation in JupyterLab: a button for each planned call that names what it will do, asks once more, does it.

`confirm_panel(rb, plan, buttons=in_lab())` shows, for each row of `remediate.plan(rb)`, a button naming the pid,
its application, user, query start and statement, and whether it cancels or terminates; a click asks "Terminate
pid 1234 (app report_job, user app, since 22:40:03Z)? [Yes, terminate] [No]", and "Yes" hands the call to
`remediate.act`, which runs it only if the pid is still that backend and records it once. Without buttons (under
`opsbook run`, papermill, nbval) it shows the plan as text, as `triage.show_plan` always has.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from . import remediate, triage
from ..core.display import NO_MATH, STYLE, esc, show_html

HINT = ("Buttons to confirm these calls need ipywidgets in this kernel (pip install 'opsbook[lab]'); "
        "the calls as text:")
NOT_DONE = "Not done: nothing was changed."


def confirm_panel(rb, plan, *, buttons: bool = False) -> "Panel | None":
    """In JupyterLab (`buttons`), the panel, shown and returned; elsewhere the plan as text, and None."""
    if buttons:
        try:
            import ipywidgets  # noqa: F401, PLC0415 - Lab only: `opsbook run` never needs it
        except ImportError:
            show_html(f'<p class="ob-muted">{esc(HINT)}</p>')
        else:
            from IPython.display import display  # noqa: PLC0415

            panel = Panel(rb, plan)
            display(panel.widget)
            return panel
    triage.show_plan(plan)
    return None


def _since(when: Any) -> str:
    """22:40:03Z today, 2026-12-06 22:40:03Z on another day."""
    if when is None or when != when:  # None, NaT
        return "no statement yet"
    when = when.astimezone(dt.timezone.utc)
    today = dt.datetime.now(dt.timezone.utc).date()
    return f"since {when:%H:%M:%S}Z" if when.date() == today else f"since {when:%Y-%m-%d %H:%M:%S}Z"


def describe(action: str, who: dict) -> str:
    """`Terminate pid 1234 (app report_job, user app, since 22:40:03Z)`: what a button does, in its own words."""
    verb = "Terminate" if action == "terminate" else "Cancel the statement of"
    return (f"{verb} pid {who['pid']} (app {who['application_name'] or '(none)'}, user {who['usename']}, "
            f"{_since(who['query_start'])})")


def _html(markup: str) -> str:
    return f'<div class="{NO_MATH}">{markup}</div>'


class Panel:
    """The widgets for one plan. `buttons[pid]` asks, `yes` does it, `no` drops it; `results[pid]` says what
    happened. Each planned backend is acted on at most once: re-run the cell for a new plan."""

    def __init__(self, rb, plan):
        import ipywidgets as w  # noqa: PLC0415

        self.rb, self.plan = rb, plan
        self.who = {int(r["pid"]): r for r in remediate.backends(rb, plan["pid"]).to_dict("records")}
        self.buttons: dict[int, Any] = {}
        self.results: dict[int, Any] = {}
        self.pending: tuple[str, int] | None = None
        self.question = w.HTML()
        self.yes = w.Button(button_style="danger")
        self.no = w.Button(description="No")
        self.yes.on_click(lambda _: self._do())
        self.no.on_click(lambda _: self._drop())
        self.ask = w.HBox([self.question, self.yes, self.no], layout=w.Layout(display="none", align_items="center"))
        rows = []
        for r in plan.itertuples():
            pid = int(r.pid)
            who = self.who.get(pid)
            call = f'<div class="ob-code">{esc(r.sql)}  -- {esc(r.reason)}</div>'
            if who is None:
                rows.append(w.HTML(_html(f"{call}<p class=\"ob-muted\">pid {pid} is no longer connected to this "
                                         "database: nothing to do.</p>")))
                continue
            button = w.Button(description=describe(r.action, who), tooltip=r.sql, layout=w.Layout(width="auto"),
                              button_style="danger" if r.action == "terminate" else "warning")
            button.on_click(lambda _, action=r.action, pid=pid: self._ask(action, pid))
            self.buttons[pid] = button
            self.results[pid] = w.HTML()
            statement = (f'<div class="ob-muted">{esc(who["state"])}: <span class="ob-code">'
                         f'{esc(str(who["query"] or "")[:500])}</span></div>')
            rows.append(w.VBox([button, w.HTML(_html(call + statement)), self.results[pid]]))
        head = ("<p><b>Proposed calls</b>: each button asks once more, then runs its call alone, in a session of "
                "its own, only if the pid is still the backend shown; the result is recorded in this run.</p>"
                if rows else "<p class=\"ob-muted\">Nothing to cancel or terminate: no root blocker, idle "
                "transaction or runaway statement past its threshold.</p>")
        self.widget = w.VBox([w.HTML(_html(STYLE + head)), *rows, self.ask])

    def _ask(self, action: str, pid: int) -> None:
        if self.buttons[pid].disabled:
            return  # done already: a click queued before the button was disabled
        self.pending = (action, pid)
        self.question.value = _html(f"<b>{esc(describe(action, self.who[pid]))}?</b>")
        self.yes.description = "Yes, terminate" if action == "terminate" else "Yes, cancel"
        self.ask.layout.display = "flex"

    def _drop(self) -> None:
        if self.pending is not None:
            self.results[self.pending[1]].value = _html(f'<p class="ob-muted">{NOT_DONE}</p>')
        self._close()

    def _do(self) -> None:
        if self.pending is None:
            return  # a second click on Yes: the first one did it
        action, pid = self.pending
        self._close()
        self.buttons[pid].disabled = True
        who = self.who[pid]
        row = remediate.act(self.rb, action, pid, backend_start=who["backend_start"], usename=who["usename"])
        self.results[pid].value = _html(f"<p><b>{esc(action)} pid {pid}</b>: {esc(row['outcome'])}</p>")

    def _close(self) -> None:
        self.pending = None
        self.ask.layout.display = "none"
