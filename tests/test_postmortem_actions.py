"""What opsbook did during an incident, in the post-mortem: each termination at the moment it happened (a Lab run's
sidecar says when; a run of `opsbook run` made it during the run), in the timeline and under "Actions taken"."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from opsbook.incident.postmortem.document import document, impact
from opsbook.incident.postmortem.evidence import Evidence, read_sidecars
from opsbook.incident.postmortem.timeline import events_table
from opsbook.incident.postmortem.window import make_window

START = datetime(2026, 11, 21, 22, 40, tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sidecar(folder, name: str, **fields) -> None:
    day = folder / "2026-11-21"
    day.mkdir(parents=True, exist_ok=True)
    (day / f"{name}.json").write_text(json.dumps({"target": "prod", "runbook": "incident-triage", "status": "ok",
                                                  **fields}))


def test_each_termination_is_dated_when_it_happened_and_listed_as_an_action_taken(tmp_path):
    done = {"check": "remediation.backends", "severity": "info", "value": True, "title": "terminate pid 4242: "
            "signal sent: terminated"}
    dry = {"check": "remediation.backends", "severity": "info", "value": False, "title": "terminate pid 7: not run: "
           "confirm is False, nothing was changed"}
    # stepped through in Lab: the run began at 22:41, the button was clicked at 22:47
    sidecar(tmp_path, "lab", started_at=iso(START + timedelta(minutes=1)), interactive=True, findings=[done],
            remediation=[{**done, "at": iso(START + timedelta(minutes=7))}])
    # `opsbook run ... -p confirm=True`: dated by the run; its dry-run line is no action
    sidecar(tmp_path, "cli", started_at=iso(START + timedelta(minutes=3)), findings=[done, dry])
    window = make_window(iso(START), iso(START + timedelta(minutes=20)), 5)
    ev = Evidence("prod", window, sidecars=read_sidecars(tmp_path, "prod", window))

    table = events_table(ev)
    actions = table[table["kind"] == "remediation"]
    assert [t.strftime("%H:%M") for t in actions["ts"]] == ["22:43", "22:47"]
    assert len(table[table["kind"] == "run"]) == 2  # the runs themselves, at their start

    text = document(title="checkout outage", severity="P1", target="prod", ev=ev, findings=[], imp=impact(ev, []),
                    timeline=table)
    section = text.split("## Actions taken during the incident", 1)[1].split("##", 1)[0]
    assert section.count("terminate pid 4242") == 2 and "pid 7" not in section
    assert section.index("22:43:00 UTC") < section.index("22:47:00 UTC")


def test_no_action_recorded_says_so(tmp_path):
    window = make_window(iso(START), iso(START + timedelta(minutes=20)), 5)
    ev = Evidence("prod", window, sidecars=read_sidecars(tmp_path, "prod", window))
    text = document(title="t", severity="P2", target="prod", ev=ev, findings=[], imp=impact(ev, []),
                    timeline=events_table(ev))
    assert "None recorded by opsbook" in text.split("## Actions taken during the incident", 1)[1]


def test_the_document_is_shown_rendered_and_what_the_database_said_stays_text(tmp_path):
    from opsbook.report.cells import document_html

    evil = {"check": "remediation.backends", "severity": "info", "value": True,
            "title": "terminate pid 1: <img src=x onerror=alert(1)> [link](javascript:alert(2))", "at": iso(START)}
    sidecar(tmp_path, "lab", started_at=iso(START), interactive=True, findings=[evil], remediation=[evil])
    window = make_window(iso(START), iso(START + timedelta(minutes=20)), 5)
    ev = Evidence("prod", window, sidecars=read_sidecars(tmp_path, "prod", window))
    text = document(title="<script>alert(3)</script>", severity="P1", target="prod", ev=ev, findings=[],
                    imp=impact(ev, []), timeline=events_table(ev))
    html = document_html(text + "\n<div onclick=alert(4)>raw</div>\n")
    assert "<h5>" in html and "<table>" in html and "<h6>Actions taken during the incident</h6>" in html
    assert not re.search(r"<h[1-4]\b", html), "the document's headings are not the report's sections"
    assert "<script" not in html and "<img" not in html and "<div" not in html and 'href="javascript' not in html
