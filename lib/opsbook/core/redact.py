"""Secrets out of query texts at the source (redact_sql), and the report files' last-resort leak detector.

Stable interface, used by the Session, the history store, the log reader and the recovery tools (`from
opsbook.core.redact import redact_sql`; `redact_query` is the same function): `redact_sql(text) -> text` with every
password literal replaced by `'***'`, found with PostgreSQL's own lexer (pglast's scanner, opsbook.core.sqltokens),
so comments, quoting and escapes are read as the server reads them:

- the string literal after PASSWORD / ENCRYPTED PASSWORD (CREATE/ALTER ROLE|USER), and after any option whose
  name ends in password, quoted or not (`OPTIONS (password '...')` / `("password" '...')` of CREATE/ALTER USER
  MAPPING or SERVER, `sslpassword`), with comments or `=` anywhere between the name and the literal;
- conninfo-like `password=...` / `sslpassword=...` anywhere (dblink_connect('... password=...'), dblink(...),
  CREATE SUBSCRIPTION ... CONNECTION '...', comments, tool output), and the password of `scheme://user:pw@host`;
- SQL inside a literal (a DO body, EXECUTE '...') or inside double quotes (an exception's repr, a JSON string),
  read again as SQL;
- a literal cut short (pg_stat_activity keeps only track_activity_query_size bytes) is redacted to its end;
- a text longer than MAX_LEXED_CHARS is cut before its first password, crypt or :// instead.

It works on any text (cut-off statements, log lines with a statement inside) and leaves every other character
as it was; on SQL it is idempotent (on random bytes a second pass may mask more, never less).
"""
from __future__ import annotations

import html
import json
import os
import re
import sys
from typing import Iterable

from .sqltokens import COMMENTS, LITERALS, Token, tokens

MASK = "***"
QUERY_COLUMNS = frozenset({"query", "last_query", "statement", "query_text", "current_query"})
MAX_DEPTH = 4  # SQL inside a literal inside a literal ...: deeper, only the conninfo and URL rules apply
# The lexer costs about 3 us a token: a longer text (a huge batch, a hostile log line) keeps only what comes before
# its first password, crypt or :// (every secret here follows one of them), so no text costs more than ~0.3 s.
MAX_LEXED_CHARS = 64 * 1024
_TRIGGER = re.compile(r"password|crypt|://", re.I)

# conninfo keyword=value inside text that is not a literal of its own (comments, tool output, a literal's
# content), where a quoted value may come with doubled quotes (''a b'') or backslash escapes. An unquoted value
# runs to the next space as libpq reads it (`password=a,b;c` is one password) or a quote, but is no function
# call: `encrypted_password = crypt(...)` is SQL (its literal is found by the lexer).
_CONNINFO = re.compile(r"(?<![?&\w])(?P<key>\w*password\s*=\s*)(?P<val>''(?:\\''|[^'])*(?:''|'|\Z)"
                       r"|\\'(?:[^'\\]|\\.)*(?:\\'|\Z)|'(?:[^'\\]|\\.)*(?:'|\Z)|(?:\\.|[^\s'\"\\(])++(?!\())",
                       re.I)
# a URL's query parameter (?sslpassword=...&...): percent-encoded, so it ends at & or #
_URL_QUERY = re.compile(r"(?P<key>[?&][^=&#?\s'\"]{0,64}password=)(?P<val>[^&#\s'\"]+)", re.I)
_URL_USERINFO = re.compile(r"(?P<key>\b[a-z][a-z0-9+.\-]{0,40}://[^:/@\s'\"]*:)(?P<val>[^@\s'\"/]+)(?=@)", re.I)
_CUT_PREFIX = {"CUT_LITERAL", "CUT_DOLLAR"}
_DOLLAR_TAG = re.compile(r"\$[^$]*\$")


def redact_sql(text: str | None) -> str | None:
    """`text` with password literals replaced by '***' (see the module docstring); None stays None."""
    if not text or not isinstance(text, str):
        return text
    low = text.lower()
    if "password" not in low and "://" not in low and "crypt" not in low:
        return text  # the common case costs three scans
    if len(text) > MAX_LEXED_CHARS:
        return _cut_at_trigger(text)
    return _redact(text, 0)


redact_query = redact_sql  # the name the log reader (opsbook.logs.redaction) looks for


def _redact(text: str, depth: int) -> str:
    toks = tokens(text)
    out: list[str] = []
    run_from = 0  # start of the text between literals, which gets the conninfo and URL rules
    for i, t in enumerate(toks):
        if t.name == "REST":  # past too many lexical errors: nothing after a password, crypt or :// is kept
            out.append(_plain(text[run_from:t.start]) + _cut_at_trigger(text[t.start:]))
            return "".join(out)
        quoted = t.name == "CUT_IDENT" or (t.name == "IDENT" and text.startswith('"', t.start))
        if not quoted and t.name not in LITERALS and t.name not in _CUT_PREFIX:
            continue
        end = t.end + 1
        out.append(_plain(text[run_from:t.start]))
        raw = text[t.start:end]
        if not quoted and _after_password(text, toks, i):
            out.append(_mask(raw))
            further = _backslash_end(text, t.start, end)  # read with standard_conforming_strings off
            if further > end:  # it may run further there: mask to its end, read the rest afresh
                out.append(_redact(text[further:], depth) if further < len(text) else "")
                return "".join(out)
        else:
            out.append(_inside(raw, depth, cut=t.name in _CUT_PREFIX or t.name == "CUT_IDENT"))
        run_from = end
    out.append(_plain(text[run_from:]))
    return "".join(out)


def _after_password(text: str, toks: list[Token], i: int) -> bool:
    """Whether the literal toks[i] is a password: after PASSWORD or an option name ending in password (comments
    and one `=` may stand between), or the first argument of crypt() (pgcrypto; Supabase's way to set a user's
    password: `encrypted_password = crypt('...', gen_salt('bf'))`)."""
    j = _previous(toks, i)
    if j < 0:
        return False
    word = text[toks[j].start:toks[j].end + 1]
    if word == "=":
        j = _previous(toks, j)
    elif word == "(":
        j = _previous(toks, j)
        return j >= 0 and toks[j].name == "IDENT" and _ident(text[toks[j].start:toks[j].end + 1]) == "crypt"
    if j < 0:
        return False
    t = toks[j]
    return t.name == "PASSWORD" or (t.name == "IDENT" and _ident(text[t.start:t.end + 1]).endswith("password"))


def _previous(toks: list[Token], i: int) -> int:
    """The index of the token before toks[i] that is no comment, or -1."""
    i -= 1
    while i >= 0 and toks[i].name in COMMENTS:
        i -= 1
    return i


def _ident(raw: str) -> str:
    return (raw[1:-1].replace('""', '"') if raw.startswith('"') else raw).lower()


def _mask(raw: str) -> str:
    return f"$${MASK}$$" if raw.startswith("$") else f"'{MASK}'"


def _backslash_end(text: str, start: int, end: int) -> int:
    """Where a plain '...' literal ends if backslashes escape (a server with standard_conforming_strings off)."""
    if not text.startswith("'", start) or "\\" not in text[start:end]:
        return end
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == "'":
            if text.startswith("'", i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _inside(raw: str, depth: int, *, cut: bool) -> str:
    """A literal that is no password itself, or a quoted identifier, with the secrets inside it redacted: SQL in
    a dollar-quoted or plain literal or a "..." (an error message's or a repr's quotes) read again as SQL,
    conninfo and URLs in any."""
    low = raw.lower()
    if "password" not in low and "://" not in low and "crypt" not in low:
        return raw
    if depth < MAX_DEPTH and raw.startswith("$"):
        tag = _DOLLAR_TAG.match(raw).group(0)
        body = raw[len(tag):len(raw) - len(tag) if not cut else len(raw)]
        new = _redact(body, depth + 1)
        if new == body:
            return raw
        if tag in new:  # the masks would end the literal early: mask it whole
            return f"{tag}{MASK}{tag}"
        return tag + new + ("" if cut else tag)
    quote = raw[0]
    if depth < MAX_DEPTH and quote in "'\"":  # a quoted identifier may be text quoted by a message or a repr
        body = (raw[1:] if cut else raw[1:-1]).replace(quote * 2, quote)
        new = _redact(body, depth + 1)
        return raw if new == body else quote + new.replace(quote, quote * 2) + ("" if cut else quote)
    return _plain(raw)


def _plain(text: str) -> str:
    """Text that is no literal (whitespace, names, comments, anything): conninfo passwords and URL user info."""
    if not text:
        return text
    low = text.lower()
    if "password" in low:
        text = _CONNINFO.sub(_masked_conninfo, _URL_QUERY.sub(lambda m: m.group("key") + MASK, text))
    if "://" in low:
        text = _URL_USERINFO.sub(lambda m: m.group("key") + MASK, text)
    return text


def _cut_at_trigger(text: str) -> str:
    """Text too long or too broken to lex: kept up to its first password, crypt or ://, masked from there."""
    m = _TRIGGER.search(text)
    return text if not m else text[:m.start()] + MASK


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


def secret_keys(parts: dict[str, str]) -> list[str]:
    """The keys of a parsed DSN that hold secrets: password, sslpassword, and any other *password*."""
    return [k for k, v in parts.items() if "password" in k and v]
