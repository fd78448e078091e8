"""SQL text as PostgreSQL's own lexer (pglast's scanner) splits it, also when it is cut off or does not lex."""
from __future__ import annotations

import re
from collections import namedtuple

LITERALS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST"})
COMMENTS = frozenset({"C_COMMENT", "SQL_COMMENT"})
MAX_ERRORS = 16  # lexical errors (trailing junk, ...) skipped before the rest of a text counts as opaque

# pglast's own Token shape: character offsets, `end` inclusive; `name` is the lexer's token name (SCONST, IDENT,
# PASSWORD, ...), or CUT_LITERAL, CUT_DOLLAR, CUT_COMMENT, CUT_IDENT, OPAQUE, REST (see tokens()).
Token = namedtuple("Token", ("start", "end", "name", "kind"))

# What an unterminated token starts with: it runs to the end of the text (pg_stat_activity keeps only
# track_activity_query_size bytes; a log line may stop anywhere).
_OPEN = re.compile(r"""(?P<literal>(?:[uU]&|[eEnNbBxX])?')|(?P<dollar>\$(?:[A-Za-z_][\w]*)?\$)"""
                   r"""|(?P<comment>/\*)|(?P<ident>(?:[uU]&)?")""")
_NEAR = re.compile(r' at or near "(.*)"\Z', re.S)
# Every character beyond ASCII lexes as PostgreSQL lexes a letter (identifier characters outside literals and
# comments, content inside them). An ASCII stand-in of one character keeps every offset and the tokens, makes
# pglast's offset conversion O(1) (it is quadratic in the non-ASCII characters of a text: 40 KB of "é " took
# 11 s) and scans lone surrogates too. "z" is no literal prefix (unlike e, b, x, n, u).
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def tokens(text: str) -> list[Token]:
    """The tokens of `text`. An unterminated literal, dollar-quoted string, comment or quoted identifier is one
    token to the end of the text (CUT_LITERAL, CUT_DOLLAR, CUT_COMMENT, CUT_IDENT); a lexical error (trailing
    junk after a number, ...) skips the bad token as OPAQUE, and after MAX_ERRORS of them the rest is one REST."""
    from pglast.parser import ParseError, scan  # noqa: PLC0415 - ~60 ms; most texts never need the lexer

    source = _NON_ASCII.sub("z", text) if not text.isascii() else text
    if "\0" in source:  # NUL ends a C string: the scanner would stop there silently
        source = source.replace("\0", " ")
    out: list[Token] = []
    pos, errors, n = 0, 0, len(source)
    while pos < n:
        part = source[pos:]
        try:
            found = scan(part)
        except ParseError as e:
            at, message = _error_at(part, e), str(e.args[0]) if e.args else ""
        else:
            out += found if not pos else [Token(pos + t.start, pos + t.end, t.name, t.kind) for t in found]
            break
        errors += 1
        if at is None or errors > MAX_ERRORS:
            out.append(Token(pos, n - 1, "REST", ""))
            break
        try:
            out += [Token(pos + t.start, pos + t.end, t.name, t.kind) for t in scan(part[:at])]
        except ParseError:  # cannot happen before the first error; be safe
            out.append(Token(pos, n - 1, "REST", ""))
            break
        m = _OPEN.match(part, at)
        if m:
            out.append(Token(pos + at, n - 1, "CUT_" + m.lastgroup.upper(), ""))
            break
        near = _NEAR.search(message)
        width = len(near.group(1)) if near and near.group(1) and part.startswith(near.group(1), at) else 1
        out.append(Token(pos + at, pos + at + width - 1, "OPAQUE", ""))
        pos += at + width
    return out


def _error_at(text: str, e: Exception) -> int | None:
    """Where the lexer stopped in the (ASCII) text: PostgreSQL's error position, which pglast reports."""
    index = e.args[1] if len(e.args) > 1 else None
    return index if isinstance(index, int) and 0 <= index < len(text) else None
