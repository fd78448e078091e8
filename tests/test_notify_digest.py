"""Repeat suppression and digests through real scheduled slots (real kernels, a real SMTP server and a recording
webhook): a standing critical is not announced again, `repeat_every` reminds at most that often, a cleared one is
told as resolved, and a retry that ends later is told on its own."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path

import pytest

from opsbook.config.file import from_dict
from opsbook.schedule.runs import run_due
from local_servers import http_recorder, smtp_server

RUNBOOKS = Path(__file__).parent / "fixtures" / "notify_runbooks"
UTC = dt.timezone.utc
DAY1 = dt.datetime(2026, 12, 2, 5, 0, 30, tzinfo=UTC)  # 06:00:30 in Berlin


@pytest.fixture
def alarms(db, monkeypatch):
    monkeypatch.setenv("OPSBOOK_RUNBOOKS", str(RUNBOOKS))
    db.execute("CREATE TABLE public.alarm (target text, check_id text, severity text, note text)")
    return db


def _config(tmp_path, db, *, targets, notify, **schedule):
    return from_dict({"targets": {t: {"dsn": db.conninfo} for t in targets},
                      "history": {"url": f"sqlite:///{tmp_path / 'history.sqlite'}"},
                      "reports": {"dir": str(tmp_path / "reports")}, "notify": notify,
                      "schedules": [{"name": "daily", "runbook": "alarm", "targets": ["all"], "cron": "0 6 * * *",
                                     "timezone": "Europe/Berlin", "catch_up": True, "notify": list(notify),
                                     **schedule}]})


def _mail(raw) -> email.message.EmailMessage:
    return email.message_from_string(raw["data"], policy=email.policy.default)


def _text(raw) -> str:
    return _mail(raw).get_body(preferencelist=("plain",)).get_content()


def test_a_standing_critical_is_told_once_reminded_by_repeat_every_and_resolved_when_it_clears(alarms, tmp_path,
                                                                                            monkeypatch):
    alarms.execute("INSERT INTO public.alarm VALUES ('east', 'locks.blocking', 'critical', '3 sessions blocked'), "
                   "('west', 'cache.hit_ratio', 'critical', '88% served from cache')")
    with smtp_server() as (host, port, mails), http_recorder() as hook:
        monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
        notify = {"mail": {"kind": "email", "to": ["dba@example.com"], "smtp": f"{host}:{port}", "attach": "none"},
                  "hook": {"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "repeat_every": "2d"}}
        config = _config(tmp_path, alarms, targets=("east", "west"), notify=notify)

        day1 = run_due(config, now=DAY1)
        assert [o.status for o in day1] == ["ok", "ok"] and len(mails) == 1 and len(hook.posts) == 1
        assert "2 need attention" in _mail(mails[0])["Subject"]
        assert "locks.blocking: 3 sessions blocked (new)" in _text(mails[0])

        day2 = run_due(config, now=DAY1 + dt.timedelta(days=1))  # the same two criticals: nothing new to say
        assert [o.status for o in day2] == ["ok", "ok"]
        assert len(mails) == 1 and len(hook.posts) == 1
        assert all(o.notifications == [] for o in day2)

        run_due(config, now=DAY1 + dt.timedelta(days=2))  # two days since the webhook heard: its reminder
        assert len(mails) == 1 and len(hook.posts) == 2
        reminder = hook.posts[1]["body"]["text"]
        assert "on 2 targets: 2 still open" in reminder
        assert "locks.blocking: 3 sessions blocked (still open since 2026-12-02)" in reminder

        alarms.execute("DELETE FROM public.alarm WHERE target = 'east'")
        run_due(config, now=DAY1 + dt.timedelta(days=3))  # east's critical cleared: both hear it
        assert len(mails) == 2 and len(hook.posts) == 3
        subject, text = _mail(mails[1])["Subject"], _text(mails[1])
        assert "1 still open" in subject and "1 resolved" in subject, subject
        assert "- east: ran, worst ok" in text and "resolved: locks.blocking" in text
        html = _mail(mails[1]).get_body(preferencelist=("html",)).get_content()
        assert "resolved</span> <code>locks.blocking</code> 3 sessions blocked" in html
        assert "open since 2026-12-02" in html and "still open since 2026-12-02" in html  # west's, compactly

        run_due(config, now=DAY1 + dt.timedelta(days=4))  # nothing changed since: silence again
        assert len(mails) == 2 and len(hook.posts) == 3


def test_a_retry_that_ends_later_is_told_on_its_own(alarms, tmp_path, monkeypatch):
    alarms.execute("INSERT INTO public.alarm VALUES ('east', 'locks.blocking', 'critical', '3 sessions blocked'), "
                   "('west', 'x.fail', 'raise', 'fail this run')")
    with smtp_server() as (host, port, mails):
        notify = {"mail": {"kind": "email", "to": ["dba@example.com"], "smtp": f"{host}:{port}", "attach": "none",
                           "on": ["failed", "critical", "done"]}}
        config = _config(tmp_path, alarms, targets=("east", "west"), notify=notify, retry_backoff_s=60)
        first = run_due(config, now=DAY1)
        assert sorted((o.target, o.status) for o in first) == [("east", "ok"), ("west", "retrying")]
        assert len(mails) == 1
        subject, text = _mail(mails[0])["Subject"], _text(mails[0])
        assert "on 2 targets: 1 needs attention, 1 retrying" in subject, subject
        assert "- west: retrying (attempt 1 of 3)" in text and "asks this run to fail" in text

        alarms.execute("DELETE FROM public.alarm WHERE target = 'west'")
        (retry,) = run_due(config, now=DAY1 + dt.timedelta(seconds=90))
        assert (retry.target, retry.status, retry.attempt) == ("west", "ok", 2)
        assert len(mails) == 2 and retry.notifications[0]["ok"]
        assert _mail(mails[1])["Subject"] == "[opsbook] alarm on west, November 2026: report ready"  # its own


def test_state_compares_by_check_target_and_severity(tmp_path):
    from opsbook.schedule.notify.state import NoticeState

    state = NoticeState(f"sqlite:///{tmp_path / 'h.sqlite'}")
    try:
        crit = {"check": "locks.blocking", "severity": "critical", "title": "blocked"}
        first = state.compare("s", "prod", [crit, {"check": "cache.hit_ratio", "severity": "ok", "title": "fine"}])
        assert [f["check"] for f in first.new] == ["locks.blocking"] and first.standing == first.resolved == []
        state.record("s", "prod", first, at=100.0)
        again = state.compare("s", "prod", [crit])
        assert again.new == [] and again.standing == [{**crit, "since": 100.0}]
        assert state.compare("s", "staging", [crit]).new == [crit]  # another target: its own news
        assert state.compare("other", "prod", [crit]).new == [crit]  # another schedule too
        lower = state.compare("s", "prod", [{**crit, "severity": "warning"}])
        assert [f["severity"] for f in lower.new] == ["warning"]  # a changed severity is news
        cleared = state.compare("s", "prod", [])
        assert cleared.resolved == [{"check": "locks.blocking", "severity": "critical", "title": "blocked",
                                     "since": 100.0}]
        state.record("s", "prod", cleared, at=200.0)
        assert state.compare("s", "prod", []).resolved == []  # told once
    finally:
        state.close()
    again = NoticeState(f"sqlite:///{tmp_path / 'h.sqlite'}")  # the schema is created idempotently
    again.close()
