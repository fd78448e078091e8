"""Secrets out of query texts at the source (redact_sql), and the report files' last-resort leak detector.

Stable interface, used by the Session, the history store and the log reader (`from opsbook.redact import
redact_sql`; `redact_query` is the same function): `redact_sql(text) -> text` with every password literal replaced by `'***'`:

- a string literal after PASSWORD / ENCRYPTED PASSWORD (CREATE/ALTER ROLE|USER), and after any option whose
  name ends in password (`OPTIONS (password '...')` of CREATE/ALTER USER MAPPING or SERVER, `sslpassword`);
- conninfo-like `password=...` / `sslpassword=...` tokens anywhere (dblink_connect('... password=...'),
  dblink(...), CREATE SUBSCRIPTION ... CONNECTION '...'), and the password of `scheme://user:password@host`;
- a literal cut short (pg_stat_activity keeps only track_activity_query_size bytes) is redacted to its end.

It is idempotent and leaves every other text byte for byte as it was.
"""
from __future__ import annotations

import html
import json
import os
import re
import sys
from typing import Iterable

MASK = "***"
QUERY_COLUMNS = frozenset({"query", "last_query", "statement", "query_text", "current_query"})

# A SQL string literal, also when the text was cut off inside it: '..' with '' escapes, E'..' with backslash
# escapes, or $tag$..$tag$.
_LITERAL = r"""(?:[EeUu]&?)?'(?:[^'\\]|''|\\.)*(?:'|\Z)|\$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:\$(?P=tag)?\$|\Z)"""
_AFTER_PASSWORD = re.compile(r"(?P<key>\b(?:ENCRYPTED\s+)?\w*PASSWORD\s*)(?P<lit>" + _LITERAL + ")",
                             re.I | re.S)
# conninfo keyword=value inside any text (also inside a SQL literal, where its quotes come doubled: ''a b'').
_CONNINFO = re.compile(r"(?P<key>\b\w*password\s*=\s*)(?P<val>''(?:\\''|[^'])*(?:''|'|\Z)|\\'(?:[^'\\]|\\.)*"
                       r"(?:\\'|\Z)|'(?:[^'\\]|\\.)*(?:'|\Z)|[^\s'\",;)&]+)", re.I)
_URL_USERINFO = re.compile(r"(?P<key>\b[a-z][a-z0-9+.\-]*://[^:/@\s'\"]*:)(?P<val>[^@\s'\"/]+)(?=@)", re.I)


def redact_sql(text: str | None) -> str | None:
    """`text` with password literals replaced by '***' (see the module docstring); None stays None."""
    if not text or not isinstance(text, str):
        return text
    low = text.lower()
    if "password" not in low and "://" not in low:
        return text  # the common case costs two scans
    out = _AFTER_PASSWORD.sub(lambda m: m.group("key") + _masked_literal(m.group("lit")), text)
    out = _CONNINFO.sub(_masked_conninfo, out)
    return _URL_USERINFO.sub(lambda m: m.group("key") + MASK, out)


redact_query = redact_sql  # the name the log reader (opsbook.logs.redaction) looks for


def _masked_literal(lit: str) -> str:
    return f"'{MASK}'" if not lit.startswith("$") else f"$${MASK}$$"


def _masked_conninfo(m: re.Match) -> str:
    val = m.group("val")
    if val.startswith("''"):
        return f"{m.group('key')}''{MASK}''"
    if val.startswith("\\'"):
        return f"{m.group('key')}\\'{MASK}\\'"
    if val.startswith("'"):
        return f"{m.group('key')}'{MASK}'"
    return m.group("key") + MASK


def redact_frame(df):
    """A DataFrame from the database with its query-text columns redacted (in place; returned for chaining)."""
    for column in QUERY_COLUMNS.intersection(map(str, df.columns)):
        if len(df):  # object or pandas' string dtype alike; other values pass through redact_sql unchanged
            df[column] = df[column].map(redact_sql)
    return df


# ---------------------------------------------------------------------------------------------- report files
MIN_REPLACE_LEN = 8  # shorter passwords are ordinary words ("ok", "demo", "table"): never replaced, still reported
STRICT_ENV = "OPSBOOK_STRICT"


class SecretLeak(Exception):
    """In strict mode (tests): a known password reached a report file."""


def known_secrets(config) -> set[str]:
    """Passwords this process could hand to libpq: PGPASSWORD and those inside dsn_env DSNs of `config`."""
    from .config import secret_keys  # noqa: PLC0415

    found = {os.environ.get("PGPASSWORD", "")}
    for t in config.targets.values():
        value = os.environ.get(t.dsn_env or "", "") if t.dsn_env else ""
        if value:
            from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

            try:
                parts = conninfo_to_dict(value)
            except Exception:  # noqa: BLE001, S112 - unparsable: the run refuses it before connecting
                continue
            found.update(parts[k] for k in secret_keys(parts))
    return {s for s in found if s}


def _forms(secret: str) -> set[str]:
    """The secret as written, JSON-escaped (ipynb, sidecar) and HTML-escaped (report)."""
    return {secret, json.dumps(secret)[1:-1], html.escape(secret, quote=True)}


# A whole token: not part of a word, an identifier (tables.bloat, ob-table, $x), a tag name (<table>) or a JSON
# key ("severity":).
def _token(form: str) -> re.Pattern:
    return re.compile(r"(?<![\w$.\-<])(?<!</)" + re.escape(form) + r"(?![\w$\-])(?!\.\w)(?!\\?\"\s*:)")


# Where a password stands when it leaked: after password= / PASSWORD ' / in URL user info.
def _in_context(form: str) -> re.Pattern:
    f = re.escape(form)
    return re.compile(r"(?:password\s*=\s*|password\s*(?:&#x27;|&quot;|\\?['\"])|://[^:/@\s]*:)" + f
                      + r"(?![\w$\-])", re.I)


_MARKUP = re.compile(r"<[^<>]*>")  # a tag (also inside the JSON of an ipynb): never touched


def _replace_in_text(pattern: re.Pattern, text: str) -> tuple[str, int]:
    """Replace `pattern` by *** outside tags only."""
    parts, n, last = [], 0, 0
    for m in _MARKUP.finditer(text):
        clean, k = pattern.subn(MASK, text[last:m.start()])
        parts += [clean, m.group(0)]
        n, last = n + k, m.end()
    clean, k = pattern.subn(MASK, text[last:])
    return "".join(parts) + clean, n + k


def scrub_report(text: str, secrets: Iterable[str]) -> tuple[str, int, int]:
    """The report file's last line of defence: (clean text, places found, places replaced). A known password of
    8+ characters standing as a whole token is replaced by *** (never inside markup or identifiers); a shorter
    one is never replaced, since it cannot be told from ordinary words, but is found where it stands as a
    password (password=..., PASSWORD '...', user:...@)."""
    clean, found, replaced = text, 0, 0
    for secret in secrets:
        for form in _forms(secret):
            if len(secret) >= MIN_REPLACE_LEN:
                n = len(_token(form).findall(clean))  # inside a tag too: found and said, but left alone
                clean, k = _replace_in_text(_token(form), clean)
                replaced += k
            else:
                n = len(_in_context(form).findall(clean))
            found += n
    return clean, found, replaced


def scrub_files(secrets: Iterable[str], *paths) -> dict:
    """Scrub each report file in place (see scrub_report) and return {path: text}. A leak is said on stderr; in
    strict mode (OPSBOOK_STRICT=1, the test suite) it raises SecretLeak once every file is written."""
    secrets, out, leaks = [s for s in secrets if s], {}, []
    for path in paths:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        clean, found, replaced = scrub_report(text, secrets)
        if clean != text:
            path.write_text(clean, encoding="utf-8")
        out[path] = clean
        if found:
            leaks.append(f"a password reached {path.name} ({found} place{'s' * (found != 1)}, "
                         + (f"{replaced} redacted" if replaced else "not redacted: shorter than 8 characters") + ")")
    for message in leaks:
        print(f"opsbook: warning: {message}; please report this", file=sys.stderr)
    if leaks and os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        raise SecretLeak("; ".join(leaks))
    return out
