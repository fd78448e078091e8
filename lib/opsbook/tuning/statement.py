"""Which statement texts may be planned at all: one plain SELECT, read with PostgreSQL's own lexer."""
from __future__ import annotations

import re
from itertools import pairwise

from ..core.sqltokens import tokens

# A token among these makes a text more than a read: a data-modifying CTE, SELECT INTO (a CREATE TABLE AS), a
# locking clause, or a second statement's verb after a cut.
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "INTO", "COPY", "CALL", "DO", "CREATE", "ALTER", "DROP",
                    "TRUNCATE", "GRANT", "REVOKE", "SET", "LOCK", "VACUUM", "ANALYZE", "EXPLAIN", "PREPARE",
                    "EXECUTE", "LISTEN", "NOTIFY", "REFRESH"})
NAME_KINDS = frozenset({"NO_KEYWORD", "UNRESERVED_KEYWORD", "COL_NAME_KEYWORD", "TYPE_FUNC_NAME_KEYWORD"})
MAX_TEXT = 2000  # the statements query keeps this many characters: a text that long may be cut off


def refusal(text: str) -> str | None:
    """Why `text` is not planned (one line), or None for a single plain SELECT (WITH ... SELECT included)."""
    if not text or not text.strip():
        return "no statement text (hidden from this role, or not kept)"
    if len(text) >= MAX_TEXT:
        return f"the text is {MAX_TEXT}+ characters and may be cut off"
    toks = tokens(text)
    bad = [t for t in toks if t.name in ("REST", "OPAQUE") or t.name.startswith("CUT_")]
    if bad:
        return "the text does not lex as complete SQL (cut off, or not SQL)"
    words = [t for t in toks if t.name not in ("C_COMMENT", "SQL_COMMENT")]
    semis = [i for i, t in enumerate(words) if t.name == "ASCII_59"]
    if semis and semis != [len(words) - 1]:
        return "more than one statement"
    if not words or words[0].name not in ("SELECT", "WITH"):
        return f"not a SELECT ({text.split(None, 1)[0][:20]})"
    verbs = sorted({t.name.removesuffix("_P") for t in words if t.name.removesuffix("_P") in WRITES})
    if verbs:
        return f"not a plain read: {', '.join(verbs)}"
    if any(t.name == "FOR" and nxt.name in ("SHARE", "NO", "KEY") for t, nxt in pairwise(words)):
        return "a locking SELECT (FOR SHARE / FOR NO KEY UPDATE)"
    return None


def names(text: str) -> set[str]:
    """Every word of `text` that could name a table or schema, folded as PostgreSQL folds it."""
    out = set()
    for t in tokens(text):
        if t.kind in NAME_KINDS and t.name not in ("PARAM", "ICONST", "FCONST") and not t.name.startswith("ASCII"):
            word = text[t.start:t.end + 1]
            out.add(word[1:-1].replace('""', '"') if word.startswith('"') else word.lower())
    return out


# What every client session says around its work (transaction control, settings, a driver's start-up probes):
# never a statement to tune, and most of it opsbook's own (texts too short for queries.opsbook_own's prefixes).
_CHATTER = re.compile(r"\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|SET|SHOW|RESET|DISCARD)\b"
                      r"|\s*select\s+(pg_catalog\.)?(version|pg_backend_pid|current_schema)\(\)\s*;?\s*\Z"
                      r"|\s*SELECT\s+typname AS name, oid, typarray AS array_oid", re.IGNORECASE)


def session_chatter(text: str) -> bool:
    return bool(_CHATTER.match(text or ""))
