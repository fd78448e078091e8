"""Sending a Message: a Slack-compatible or JSON webhook (httpx), or e-mail (smtplib); retried briefly, never raising.

httpx for HTTP: timeouts per phase and a clean error per failure; the standard library's smtplib and email for
mail (STARTTLS, attachments), which are complete and well kept.
"""
from __future__ import annotations

import datetime as dt
import smtplib
import ssl
import time
from typing import Any

from ...core.errors import ConfigError
from ...core.escape import slack
from .message import Message
from .secrets import SecretMissing, secret
from .spec import Notifier, load_notifiers

LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class SendError(Exception):
    """A notifier could not deliver; the message says why without any secret."""


def send_all(config, names: list[str], msg: Message) -> list[dict[str, Any]]:
    """Send `msg` to each named notifier that wants its events; one outcome record each (for the sidecar)."""
    notifiers = load_notifiers(config)
    out = []
    for name in names:
        n = notifiers[name]
        if not n.wants(set(msg.events)) and not msg.test:
            continue
        out.append(send_one(config, n, msg))
    return out


def send_one(config, n: Notifier, msg: Message) -> dict[str, Any]:
    """Deliver with `n.retries` quick retries; returns {notifier, kind, event, ok, attempts, error, at}, with
    `secret: false` when the notifier could not get its secret (no retry helps: the run must say so loudly)."""
    error = None
    attempts = 0
    no_secret = False
    for attempt in range(n.retries + 1):
        attempts = attempt + 1
        try:
            (_webhook if n.kind == "webhook" else _email)(config, n, msg)
            error = None
            break
        except SendError as e:
            error = str(e)
        except (SecretMissing, ConfigError) as e:
            error, no_secret = str(e), True
            break
        if attempt < n.retries:
            time.sleep(min(2 ** attempt, 4))
    at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {"notifier": n.name, "kind": n.kind, "event": msg.event, "ok": error is None, "attempts": attempts,
              "error": error, "at": at}
    if no_secret:
        record["secret"] = False
    if error:
        import sys  # noqa: PLC0415

        print(f"opsbook: notifier {n.name!r} failed after {attempts} attempt(s): {error}", file=sys.stderr)
    return record


def _webhook(config, n: Notifier, msg: Message) -> None:
    import httpx  # noqa: PLC0415

    url = secret(n, "url", required=True)
    body = (msg.payload(config, n.report_url_prefix) if n.options.get("format") == "json"
            else {"text": slack(msg.text(config, n.report_url_prefix))})  # no `<!channel>`, no disguised link
    try:
        r = httpx.post(url, json=body, timeout=n.timeout_s, follow_redirects=False)
    except httpx.TimeoutException:
        raise SendError(f"the webhook did not answer within {n.timeout_s:g} s") from None
    except httpx.HTTPError as e:  # the URL is never quoted: it is the secret
        raise SendError(f"the webhook could not be reached: {type(e).__name__}") from None
    if r.status_code >= 300:
        raise SendError(f"the webhook answered HTTP {r.status_code}")


def _email(config, n: Notifier, msg: Message) -> None:
    from .mail import build  # noqa: PLC0415

    o = n.options
    host, _, port = o["smtp"].partition(":")
    port = int(port or 587)
    m, _ = build(config, n, msg)
    # a secret the configuration names must be there (a timer without the installing shell's environment);
    # without user_env/user_file the default variables are used when set, and no login when not
    user = secret(n, "user", required="user_env" in o or "user_file" in o)
    password = secret(n, "password", required=bool(user) and ("password_env" in o or "password_file" in o))
    starttls = o.get("starttls", "auto")
    try:
        with smtplib.SMTP(host, port, timeout=n.timeout_s) as smtp:
            smtp.ehlo()
            if starttls is True or (starttls == "auto" and smtp.has_extn("starttls")):
                smtp.starttls(context=tls_context(o.get("ca_file")))  # without one, smtplib verifies nothing
                smtp.ehlo()
            elif user and host not in LOOPBACK:
                raise SendError(f"{host} offers no STARTTLS: refusing to send the SMTP password in clear text")
            elif o.get("ca_file"):  # a relay whose CA is named speaks TLS: its absence is a downgrade
                raise SendError(f"{host} offers no STARTTLS, though ca_file names its CA: nothing was sent")
            if user:
                smtp.login(user, password)
            smtp.send_message(m)
    except SendError:
        raise
    except ssl.SSLCertVerificationError as e:
        why = (e.verify_message or e.reason or "").rstrip(".")
        raise SendError(f"SMTP {host}:{port}: the server's certificate is not trusted for {host} ({why}); nothing "
                        "was sent. For a private relay, name its CA in ca_file") from None
    except (smtplib.SMTPException, OSError) as e:
        reason = getattr(e, "smtp_error", b"")
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise SendError(f"SMTP {host}:{port}: {type(e).__name__} {' '.join((reason or str(e)).split())[:200]}") \
            from None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificate and host name verified: against the system's CAs, or only `ca_file`'s for a private relay."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
