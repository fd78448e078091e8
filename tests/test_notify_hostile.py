"""Messages that cannot be turned against their readers: an SMTP impostor never gets the password (a real aiosmtpd
server with STARTTLS and a certificate made here), and Slack text never pings or links for the database."""
from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
from contextlib import contextmanager

import pytest

from opsbook.config.file import from_dict
from opsbook.core.errors import ConfigError
from opsbook.schedule.notify import send_all
from opsbook.schedule.notify.message import Message
from opsbook.schedule.notify.spec import load_notifiers
from local_servers import http_recorder

HOSTILE_TABLE = "<!channel> <https://evil.example/login|Open the report>"
SIDECAR = {"runbook": "incident-triage", "target": "prod", "status": "ok", "error": None,
           "findings": [{"check": "storage.bloat", "severity": "critical",
                         "title": f"table public.{HOSTILE_TABLE} & friends is 80% bloat"}]}


def certificate(folder, name: str, *, san: str) -> tuple[str, str]:
    """A self-signed certificate (it is its own CA) for `san`, made by openssl: (cert.pem, key.pem)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


@contextmanager
def starttls_server(cert: str, key: str):
    """aiosmtpd offering STARTTLS with `cert` and AUTH only over TLS; yields (port, received mails, AUTH attempts)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from conftest import free_port

    received: list = []
    auths: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            received.append(envelope.content.decode("utf-8", "replace"))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, data):
        auths.append((mechanism, getattr(data, "login", b""), getattr(data, "password", b"")))
        return AuthResult(success=True)

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=tls, authenticator=authenticator,
                            auth_require_tls=True)
    controller.start()
    try:
        yield port, received, auths
    finally:
        controller.stop()


def _config(tmp_path, **notify):
    return from_dict({"notify": notify, "reports": {"dir": str(tmp_path / "reports")}})


def _msg(config, tmp_path):
    report = tmp_path / "reports" / "2026-12-01" / "incident-triage--prod--060000Z.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    return Message.from_run(config, schedule="nightly", runbook="incident-triage", target="prod", status="ok",
                            events={"critical"}, sidecar=SIDECAR, report=str(report))


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("OPSBOOK_SMTP_USER", "opsbook-mailer")
    monkeypatch.setenv("OPSBOOK_SMTP_PASSWORD", "s3cret-smtp-password")


def _mail(port, **extra):
    return {"kind": "email", "to": ["dba@example.com"], "smtp": f"127.0.0.1:{port}", "from": "opsbook@example.com",
            "on": ["critical"], "retries": 0, "timeout_s": 5, **extra}


def test_impostor_with_a_self_signed_certificate_never_gets_the_password(tmp_path, credentials):
    cert, key = certificate(tmp_path, "relay", san="IP:127.0.0.1,DNS:localhost")
    with starttls_server(cert, key) as (port, received, auths):
        config = _config(tmp_path, mail=_mail(port))  # no ca_file: the system's CAs, which never signed this
        result = send_all(config, ["mail"], _msg(config, tmp_path))[0]
    assert auths == [] and received == []  # no AUTH reached the server, nor any mail
    assert not result["ok"] and "certificate" in result["error"] and "ca_file" in result["error"]
    assert "s3cret" not in str(result)


def test_private_relay_named_by_ca_file_gets_the_mail(tmp_path, credentials):
    cert, key = certificate(tmp_path, "relay", san="IP:127.0.0.1,DNS:localhost")
    with starttls_server(cert, key) as (port, received, auths):
        config = _config(tmp_path, mail=_mail(port, ca_file=cert))
        result = send_all(config, ["mail"], _msg(config, tmp_path))[0]
    assert result["ok"], result
    assert [(a[1], a[2]) for a in auths] == [(b"opsbook-mailer", b"s3cret-smtp-password")]
    mail = email.message_from_string(received[0], policy=email.policy.default)
    assert "needs attention" in mail["Subject"]


def test_certificate_for_another_name_is_refused_even_with_its_ca(tmp_path, credentials):
    cert, key = certificate(tmp_path, "mail.evil.example", san="DNS:mail.evil.example")
    with starttls_server(cert, key) as (port, received, auths):
        config = _config(tmp_path, mail=_mail(port, ca_file=cert))
        result = send_all(config, ["mail"], _msg(config, tmp_path))[0]
    assert auths == [] and received == []
    assert not result["ok"] and "certificate" in result["error"] and "127.0.0.1" in result["error"]


def test_relay_named_by_ca_file_that_offers_no_starttls_gets_nothing(tmp_path):
    from local_servers import smtp_server

    cert, _ = certificate(tmp_path, "relay", san="IP:127.0.0.1")
    with smtp_server() as (host, port, received):  # no STARTTLS: what a downgrading man in the middle shows
        config = _config(tmp_path, mail=_mail(port, ca_file=cert))
        result = send_all(config, ["mail"], _msg(config, tmp_path))[0]
    assert received == [] and not result["ok"] and "offers no STARTTLS, though ca_file names its CA" in result["error"]


def test_ca_file_relative_to_the_config_file_and_checked(tmp_path):
    (tmp_path / "relay-ca.pem").write_text("not checked here: ssl reads it when a mail is sent\n")
    config = from_dict({"notify": {"m": _mail(25, ca_file="relay-ca.pem")}}, path=tmp_path / "opsbook.toml")
    assert load_notifiers(config)["m"].options["ca_file"] == str(tmp_path / "relay-ca.pem")
    for bad, message in [("missing.pem", "ca_file: no such file"), (7, "ca_file must be the path")]:
        with pytest.raises(ConfigError, match="notifier 'm'") as e:
            load_notifiers(from_dict({"notify": {"m": _mail(25, ca_file=bad)}}, path=tmp_path / "opsbook.toml"))
        assert message in str(e.value) and e.value.exit_code == 2


def test_slack_text_escapes_what_the_database_wrote(tmp_path, monkeypatch):
    with http_recorder() as hook:
        monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
        config = _config(tmp_path, report_url_prefix="https://reports.example.com/a&b",
                         slack={"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "on": ["critical"]})
        assert send_all(config, ["slack"], _msg(config, tmp_path))[0]["ok"]
    text = hook.posts[0]["body"]["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example/login|Open the report&gt; &amp; friends" in text
    assert "<!channel>" not in text and "<https://evil" not in text and "& " not in text
    # opsbook's own link still works: Slack reads &amp; back as & in a URL
    assert "report: https://reports.example.com/a&amp;b/2026-12-01/incident-triage--prod--060000Z.html" in text


def test_json_webhook_and_mail_keep_the_text_as_it_is(tmp_path, monkeypatch):
    """Escaping is Slack's syntax: the generic JSON body carries the data unchanged."""
    with http_recorder() as hook:
        monkeypatch.setenv("OPSBOOK_TEST_HOOK", hook.url)
        config = _config(tmp_path, j={"kind": "webhook", "url_env": "OPSBOOK_TEST_HOOK", "format": "json",
                                      "on": ["critical"]})
        assert send_all(config, ["j"], _msg(config, tmp_path))[0]["ok"]
    assert hook.posts[0]["body"]["top_findings"][0]["title"] == SIDECAR["findings"][0]["title"]


def test_message_lines_drop_control_and_bidi_characters(tmp_path):
    config = _config(tmp_path)
    msg = Message.from_run(config, schedule=None, runbook="incident-triage", target="prod", status="failed",
                           events={"failed"}, sidecar=None, report=None,
                           error="boom\nreport: https://evil.example/fake \x1b[2J\u202egnp.exe\x00")
    text = msg.text(config, None)
    assert "error: boom report: https://evil.example/fake [2Jgnp.exe" in text
    assert not any(c in text for c in "\x1b\u202e\x00") and text.count("\nreport:") == 0
