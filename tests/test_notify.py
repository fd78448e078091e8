"""Notifications through real local servers: a webhook that records POSTs (or answers 500, or hangs) and SMTP."""
from __future__ import annotations

import email
import email.policy
import time

import pytest

from opsbook.config.file import from_dict
from opsbook.core.errors import ConfigError
from opsbook.schedule.notify import send_all
from opsbook.schedule.notify.message import Message
from opsbook.schedule.notify.spec import load_notifiers
from local_servers import http_recorder, smtp_server

SIDECAR = {"runbook": "incident-triage", "target": "prod", "status": "ok", "error": None,
           "findings": [{"check": "locks.blocking", "severity": "critical", "title": "3 sessions blocked by pid 4711"},
                        {"check": "queries.slow", "severity": "warning", "title": "a slow statement"},
                        {"check": "cache.hit_ratio", "severity": "ok", "title": "fine"}]}


def _config(tmp_path, **notify):
    return from_dict({"notify": notify, "reports": {"dir": str(tmp_path / "reports")}})


def _msg(config, tmp_path, events=("critical", "done"), status="ok", error=None):
    report = tmp_path / "reports" / "2026-12-01" / "incident-triage--prod--060000Z.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.with_suffix(".html").write_text("<html><body>the report</body></html>")
    return Message.from_run(config, schedule="nightly", runbook="incident-triage", target="prod", status=status,
                            events=set(events), sidecar=SIDECAR, report=str(report), error=error)


def test_webhook_slack_text_and_url_prefix(tmp_path, monkeypatch):
    with http_recorder() as hook:
        monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
        config = _config(tmp_path, report_url_prefix="https://reports.example.com/ops",
                         slack={"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "on": ["critical"]})
        results = send_all(config, ["slack"], _msg(config, tmp_path))
    assert results[0]["ok"] and results[0]["attempts"] == 1 and results[0]["event"] == "critical"
    text = hook.posts[0]["body"]["text"]
    assert "incident-triage on prod: needs attention (1 critical, 1 warning)" in text
    assert "- critical: locks.blocking: 3 sessions blocked by pid 4711" in text
    assert "report: https://reports.example.com/ops/2026-12-01/incident-triage--prod--060000Z.html" in text
    assert "secret-token-in-path" not in str(results)  # the URL is a secret: never in a record


def test_webhook_json_format_and_event_filter(tmp_path, monkeypatch):
    with http_recorder() as hook:
        monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
        config = _config(tmp_path, ops={"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "format": "json",
                                        "on": ["failed"]})
        assert send_all(config, ["ops"], _msg(config, tmp_path)) == []  # a report that ran: not its business
        failed = _msg(config, tmp_path, events=("failed",), status="failed", error="ZeroDivisionError: boom "
                      "(code cell 3, section 'The failing step')")
        results = send_all(config, ["ops"], failed)
    body = hook.posts[0]["body"]
    assert len(hook.posts) == 1 and results[0]["ok"]
    assert body["event"] == "failed" and body["status"] == "failed" and body["target"] == "prod"
    assert body["error"].startswith("ZeroDivisionError: boom (code cell 3")
    assert body["counts"] == {"critical": 1, "warning": 1, "info": 0, "ok": 1}


def test_failing_webhook_is_retried_and_recorded_never_raised(tmp_path, monkeypatch):
    with http_recorder("error") as hook:
        monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
        config = _config(tmp_path, bad={"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "retries": 1})
        results = send_all(config, ["bad"], _msg(config, tmp_path))
    assert len(hook.posts) == 2  # the first try and one retry
    assert results[0] == {**results[0], "ok": False, "attempts": 2, "error": "the webhook answered HTTP 500"}


def test_hanging_webhook_times_out(tmp_path, monkeypatch):
    with http_recorder("hang") as hook:
        monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
        config = _config(tmp_path, slow={"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "retries": 0,
                                         "timeout_s": 0.5})
        t0 = time.perf_counter()
        results = send_all(config, ["slow"], _msg(config, tmp_path))
    assert not results[0]["ok"] and "did not answer within 0.5 s" in results[0]["error"]
    assert time.perf_counter() - t0 < 3


def test_unset_webhook_variable_is_a_failed_send(tmp_path, monkeypatch):
    monkeypatch.delenv("OPSBOOK_UNSET_HOOK", raising=False)
    config = _config(tmp_path, x={"kind": "webhook", "url_env": "OPSBOOK_UNSET_HOOK", "retries": 0})
    r = send_all(config, ["x"], _msg(config, tmp_path))[0]
    assert not r["ok"] and r["error"] == "environment variable OPSBOOK_UNSET_HOOK (the webhook URL) is not set"


def test_email_arrives_with_attachment(tmp_path):
    with smtp_server() as (host, port, received):
        config = _config(tmp_path, mail={"kind": "email", "to": ["dba@example.com", "lead@example.com"],
                                         "smtp": f"{host}:{port}", "from": "opsbook@example.com",
                                         "attach_html": True, "on": ["critical"]})
        results = send_all(config, ["mail"], _msg(config, tmp_path))
    assert results[0]["ok"], results
    mail = email.message_from_string(received[0]["data"], policy=email.policy.default)
    assert received[0]["to"] == ["dba@example.com", "lead@example.com"]
    assert mail["Subject"].strip() == "[opsbook] incident-triage on prod: needs attention (1 critical, 1 warning)"
    parts = {p.get_content_type(): p for p in mail.walk()}
    assert "3 sessions blocked by pid 4711" in parts["text/plain"].get_payload(decode=True).decode()
    assert parts["text/html"].get_filename() == "incident-triage--prod--060000Z.html"


def test_refused_smtp_is_recorded(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    config = _config(tmp_path, mail={"kind": "email", "to": ["dba@example.com"], "smtp": f"127.0.0.1:{port}",
                                     "retries": 0, "timeout_s": 2})
    r = send_all(config, ["mail"], _msg(config, tmp_path))[0]
    assert not r["ok"] and r["error"].startswith(f"SMTP 127.0.0.1:{port}: ConnectionRefusedError")


@pytest.mark.parametrize("notifier, message", [
    ({"kind": "pager"}, "kind must be one of webhook, email"),
    ({"kind": "webhook", "url": "https://hooks.example.com/x"}, "a webhook URL is a secret"),
    ({"kind": "webhook", "url_env": "X", "on": ["sometimes"]}, "on must be a list of failed, critical, done"),
    ({"kind": "email", "to": ["not-an-address"], "smtp": "mail:25"}, "to must be a list of e-mail addresses"),
    ({"kind": "email", "to": ["a@b.c"], "smtp": "mail:25", "password": "x"}, "SMTP credentials come from the environment"),
    ({"kind": "email", "to": ["a@b.c"], "smtp": "mail:port"}, "smtp must be"),
])
def test_bad_notifier_config_names_the_notifier(tmp_path, notifier, message):
    with pytest.raises(ConfigError, match="notifier 'n'") as e:
        load_notifiers(_config(tmp_path, n=notifier))
    assert message in str(e.value) and e.value.exit_code == 2


def test_notify_test_command_sends_a_real_message(tmp_path, monkeypatch):
    import subprocess
    import sys

    with http_recorder() as hook:
        (tmp_path / "opsbook.toml").write_text('[notify.hook]\nkind = "webhook"\nurl_env = "OPSBOOK_TEST_HOOK"\n')
        env = {**__import__("os").environ, "OPSBOOK_TEST_HOOK": hook.url}
        opsbook = str(__import__("pathlib").Path(sys.executable).parent / "opsbook")
        out = subprocess.run([opsbook, "--config", str(tmp_path / "opsbook.toml"), "notify", "test", "hook"],
                             capture_output=True, text=True, env=env)
        bad = subprocess.run([opsbook, "--config", str(tmp_path / "opsbook.toml"), "notify", "test", "nope"],
                             capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "hook: sent (1 attempt(s))"
    assert hook.posts[0]["body"]["text"].startswith("[opsbook test] notifications from opsbook reach you here")
    assert bad.returncode == 2 and "notifier 'nope' not found; known: hook" in bad.stderr
