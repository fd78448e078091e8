"""The mail a manager opens, as received by a real SMTP server (aiosmtpd) after a real scheduled slot on four
targets: one digest, text and HTML, Date, Message-ID and From, the month in the subject, and each attached report
opening alone in headless chromium with its charts drawn."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from opsbook.config.file import from_dict
from opsbook.core.errors import ConfigError
from opsbook.schedule.notify.send import send_one
from opsbook.schedule.notify.spec import load_notifiers
from opsbook.schedule.runs import run_due
from local_servers import http_recorder, smtp_server
from report_browser import CHROMIUM, browser, open_page

RUNBOOKS = Path(__file__).parent / "fixtures" / "notify_runbooks"
UTC = dt.timezone.utc
TARGETS = ("berlin", "paris", "madrid", "rome")
HOSTILE = '<img src=x onerror="alert(1)"> & <b>bold</b>'
SLOT = dt.datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # 06:00 in Berlin on December 1: the report on November
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def alarm_table(db) -> None:
    db.execute("CREATE TABLE public.alarm (target text, check_id text, severity text, note text)")


def shots(tmp_path: Path) -> Path:
    """Where the screenshots go: $OPSBOOK_SCREENSHOTS when set (the suite keeps that variable), else the test's own
    folder."""
    out = Path(os.environ.get("OPSBOOK_SCREENSHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def monthly(pg, tmp_path_factory):
    """One real slot of a monthly schedule on four targets (one real kernel per target), its mail and webhook."""
    from conftest import drop_database, make_database

    db = make_database(pg)
    tmp = tmp_path_factory.mktemp("monthly-mail")
    alarm_table(db)
    db.execute("INSERT INTO public.alarm VALUES ('berlin', 'locks.blocking', 'critical', %s), "
               "('paris', 'queries.slow', 'warning', 'a slow statement')", (f"3 sessions blocked by {HOSTILE}",))
    raw = {"targets": {t: {"dsn": db.conninfo} for t in TARGETS},
           "history": {"url": f"sqlite:///{tmp / 'history.sqlite'}"}, "reports": {"dir": str(tmp / "reports")},
           "schedules": [{"name": "monthly-report", "runbook": "alarm", "targets": ["all"], "cron": "0 6 1 * *",
                          "timezone": "Europe/Berlin", "catch_up": True, "notify": ["managers", "hook"]}]}
    try:
        with pytest.MonkeyPatch.context() as mp, smtp_server() as (host, port, received), http_recorder() as hook:
            mp.setenv("OPSBOOK_RUNBOOKS", str(RUNBOOKS))
            mp.setenv("OPSBOOK_TEST_HOOK", hook.url)
            raw["notify"] = {"managers": {"kind": "email", "to": ["cto@example.com", "dba@example.com"],
                                          "smtp": f"{host}:{port}", "from": "Opsbook Reports <reports@example.com>",
                                          "on": ["failed", "critical", "done"], "max_attach_mb": 40},
                             "hook": {"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "format": "json",
                                      "on": ["failed", "critical", "done"]}}
            config = from_dict(raw)
            outcomes = run_due(config, now=SLOT + dt.timedelta(seconds=30))
            yield SimpleNamespace(config=config, outcomes=outcomes, mails=list(received), posts=list(hook.posts),
                                  tmp=tmp, raw=raw)
    finally:
        drop_database(db)


def _parsed(mail) -> email.message.EmailMessage:
    return email.message_from_string(mail["data"], policy=email.policy.default)


def test_the_slot_of_four_targets_is_one_mail_with_the_headers_a_reader_needs(monthly):
    assert sorted((o.target, o.status) for o in monthly.outcomes) == sorted((t, "ok") for t in TARGETS)
    assert len(monthly.mails) == 1, [m["data"][:300] for m in monthly.mails]  # not one per target
    mail = _parsed(monthly.mails[0])
    assert monthly.mails[0]["to"] == ["cto@example.com", "dba@example.com"]
    assert parseaddr(mail["From"]) == ("Opsbook Reports", "reports@example.com")
    assert parsedate_to_datetime(mail["Date"]).tzinfo is not None
    assert abs((parsedate_to_datetime(mail["Date"]) - dt.datetime.now(UTC)).total_seconds()) < 600
    assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@example.com>")
    subject = mail["Subject"]
    assert "alarm" in subject and "November 2026" in subject and "4 targets" in subject, subject
    assert "1 needs attention" in subject, subject
    assert mail.get_content_type() == "multipart/mixed"
    body = mail.get_body(preferencelist=("related", "html", "plain"))
    assert body.get_content_type() == "text/html"
    alternative = next(p for p in mail.walk() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    for t in TARGETS:
        assert f"- {t}: ran" in text
    files = [p for p in mail.iter_attachments()]
    assert sorted(p.get_filename().split("--")[1] for p in files) == sorted(TARGETS)
    assert {p.get_content_type() for p in files} == {"text/html"}


def test_the_html_body_has_the_verdict_rows_and_escapes_the_database(monthly, tmp_path):
    mail = _parsed(monthly.mails[0])
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "In 2026-11, berlin raised 1 alarm(s)." in html  # the verdict sentences of the report
    assert "The bill is what it was." in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<img" not in html and "<script" not in html.lower()
    for t in TARGETS:
        assert f"<b>{t}</b>" in html
    page = tmp_path / "body.html"
    page.write_text(html, encoding="utf-8")
    if CHROMIUM:
        with browser() as ctx:
            p = open_page(ctx, page)
            try:
                rows = p.evaluate("() => [...document.querySelectorAll('tbody tr')].map(r => r.cells[0].innerText)")
                assert sorted(rows) == sorted(TARGETS)
                assert p.evaluate("() => document.querySelectorAll('img').length") == 0
                p.screenshot(path=str(shots(tmp_path) / "mail-body.png"), full_page=True)
            finally:
                p.close()


@needs_chromium
def test_each_attachment_opens_alone_with_its_charts(monthly, tmp_path):
    mail = _parsed(monthly.mails[0])
    part = next(p for p in mail.iter_attachments() if "--berlin--" in p.get_filename())
    alone = tmp_path / "downloads" / part.get_filename()  # a folder with nothing else: no ../plotly-*.js
    alone.parent.mkdir()
    alone.write_bytes(part.get_payload(decode=True))
    assert list(alone.parent.iterdir()) == [alone]
    requests: list[str] = []
    with browser() as ctx:
        page = ctx.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(alone.as_uri(), wait_until="load")
        page.wait_for_function("() => document.querySelector('.js-plotly-plot svg.main-svg') !== null",
                               timeout=120_000)
        facts = page.evaluate("""() => ({
            charts: document.querySelectorAll('.js-plotly-plot').length,
            drawn: [...document.querySelectorAll('.js-plotly-plot')]
                   .filter(d => d.querySelector('svg.main-svg')).length,
            bars: document.querySelectorAll('.js-plotly-plot .trace .point').length,
            dead: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
                  .filter(h => !h.startsWith('#') && !/^[a-z]+:/.test(h)),
            inert: [...document.querySelectorAll('a:not([href])')].map(a => a.title),
            scripts: [...document.querySelectorAll('script[src]')].map(s => s.src)})""")
        page.screenshot(path=str(shots(tmp_path) / "mail-attachment.png"), full_page=True)
        page.close()
    assert facts["charts"] == facts["drawn"] == 1 and facts["bars"] == 3, facts
    assert facts["scripts"] == [] and facts["dead"] == [], facts  # nothing loaded from beside the file
    assert "on the reports server: index.html" in facts["inert"], facts
    assert f"on the reports server: {alone.parent.name}" not in str(facts["inert"])
    assert any(t.startswith("on the reports server: 2026-") and t.endswith("capacity-planning--x--000000Z.html")
               for t in facts["inert"]), facts
    assert [u for u in requests if "plotly" in u] == [] and all(u == alone.as_uri() for u in requests), requests


def test_links_go_to_the_reports_server_when_its_url_is_known(monthly, tmp_path):
    from opsbook.schedule.notify.report_page import self_contained

    (berlin,) = [o for o in monthly.outcomes if o.target == "berlin"]
    html = Path(berlin.report).with_suffix(".html")
    page = self_contained(html, monthly.config.reports_dir, "https://reports.example.com/ops")
    assert 'href="https://reports.example.com/ops/index.html"' in page
    day = Path(berlin.report).parent.name
    assert f'href="https://reports.example.com/ops/{day}/capacity-planning--x--000000Z.html"' in page
    assert "../plotly" not in page and page.count("<script") >= 2  # plotly inlined, then the figure's own


def test_the_webhook_gets_one_post_for_the_slot(monthly):
    assert len(monthly.posts) == 1
    body = monthly.posts[0]["body"]
    assert body["digest"] is True and body["month"] == "2026-11" and body["schedule"] == "monthly-report"
    assert sorted(t["target"] for t in body["targets"]) == sorted(TARGETS)
    berlin = next(t for t in body["targets"] if t["target"] == "berlin")
    assert berlin["top_findings"][0]["check"] == "locks.blocking" and berlin["verdict"][0].startswith("In 2026-11")


def test_the_attachments_keep_within_max_attach_mb(monthly):
    from opsbook.schedule.notify.dispatch import announce
    from opsbook.schedule.spec import load_schedules

    raw = {**monthly.raw, "notify": {**monthly.raw["notify"]}}
    with smtp_server() as (host, port, received):
        raw["notify"]["managers"] = {**raw["notify"]["managers"], "smtp": f"{host}:{port}", "max_attach_mb": 14}
        raw["notify"] = {"managers": raw["notify"]["managers"]}
        raw["schedules"] = [{**raw["schedules"][0], "notify": ["managers"], "name": "other"}]
        config = from_dict(raw)
        (s,) = load_schedules(config, check_runbooks=False)
        (r,) = announce(config, s, monthly.outcomes)
    assert r["ok"], r
    mail = _parsed(received[0])
    files = list(mail.iter_attachments())
    assert len(files) == 2 and "--berlin--" in files[0].get_filename()  # the worst first, two of 6.5 MB each
    assert len(received[0]["data"]) < 14 * 1024 * 1024 + 200_000
    assert mail.get_body(preferencelist=("plain",)).get_content().count("is not attached") == 2


@needs_chromium
def test_pdf_when_the_notifier_asks(monthly, tmp_path):
    (berlin,) = [o for o in monthly.outcomes if o.target == "berlin"]
    mail = _send_report(monthly, berlin, attach="pdf")
    (part,) = list(mail.iter_attachments())
    data = part.get_payload(decode=True)
    assert part.get_content_type() == "application/pdf"
    assert "--berlin--" in part.get_filename() and part.get_filename().endswith(".pdf")
    assert data.startswith(b"%PDF-") and b"/Type /Page" in data
    (shots(tmp_path) / "mail-attachment.pdf").write_bytes(data)


def test_pdf_without_chromium_says_so_and_attaches_the_html(monthly, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium to be found
    (berlin,) = [o for o in monthly.outcomes if o.target == "berlin"]
    mail = _send_report(monthly, berlin, attach="pdf")
    (part,) = list(mail.iter_attachments())
    assert part.get_content_type() == "text/html" and part.get_filename().endswith(".html")
    note = "The report of berlin is attached as HTML, not PDF: no chromium on this machine"
    assert note in mail.get_body(preferencelist=("plain",)).get_content()
    assert note in mail.get_body(preferencelist=("html",)).get_content()


def _send_report(monthly, outcome, **options):
    import json

    from opsbook.schedule.notify.message import Message

    with smtp_server() as (host, port, received):
        config = from_dict({"reports": {"dir": str(monthly.tmp / "reports")},
                            "notify": {"m": {"kind": "email", "to": ["cto@example.com"], "smtp": f"{host}:{port}",
                                             **options}}})
        sidecar = json.loads(Path(outcome.report).read_text())
        msg = Message.from_run(config, schedule="monthly-report", runbook="alarm", target=outcome.target,
                               status="ok", events={"critical", "done"}, sidecar=sidecar, report=outcome.report)
        r = send_one(config, load_notifiers(config)["m"], msg)
    assert r["ok"], r
    return _parsed(received[0])


@pytest.mark.parametrize("notifier, message", [
    ({"attach": "zip"}, 'attach must be "html"'),
    ({"attach": "pdf", "attach_html": True}, "not attach_html as well"),
    ({"from": "Reports <not an address>"}, "from must be an e-mail address"),
    ({"from": "a@b.c\nBcc: x@evil.example"}, "from must be an e-mail address"),
    ({"repeat_every": "weekly"}, "repeat_every must be a duration"),
    ({"max_attach_mb": 0}, "max_attach_mb must be"),
])
def test_bad_mail_settings_name_the_notifier(notifier, message):
    config = from_dict({"notify": {"n": {"kind": "email", "to": ["a@b.c"], "smtp": "mail:25", **notifier}}})
    with pytest.raises(ConfigError, match="notifier 'n'") as e:
        load_notifiers(config)
    assert message in str(e.value) and e.value.exit_code == 2


def test_from_with_a_name_and_repeat_every_are_read():
    config = from_dict({"notify": {"n": {"kind": "email", "to": ["a@b.c"], "smtp": "mail:25", "repeat_every": "7d",
                                         "from": "Opsbook <ops@example.com>"}}})
    n = load_notifiers(config)["n"]
    assert n.options["from"] == "Opsbook <ops@example.com>" and n.repeat_every_s == 7 * 86400
    assert n.options["attach"] == "html"  # the default: the report, opening alone
