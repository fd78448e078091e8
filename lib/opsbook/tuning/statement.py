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
    names = [t.name for t in words]
    locking = {i for i, n in enumerate(names) if n == "UPDATE" and i and (names[i - 1] == "FOR" or names[i - 2:i]
                                                                          == ["NO", "KEY"])}  # FOR [NO KEY] UPDATE
    verbs = sorted({t.name.removesuffix("_P") for i, t in enumerate(words)
                    if t.name.removesuffix("_P") in WRITES and i not in locking})
    if verbs:
        return f"not a plain read: {', '.join(verbs)}"
    if locking or any(t.name == "FOR" and nxt.name in ("SHARE", "NO", "KEY") for t, nxt in pairwise(words)):
        return "a locking SELECT (FOR UPDATE / FOR SHARE): opsbook plans plain reads only"
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


# pg_stat_statements keeps a typed literal (interval '7 days', date '2026-01-01') as `interval $4`, which does not
# parse: such a parameter is planned as CAST($4 AS interval). Only PostgreSQL's own type names are rewritten.
TYPED_LITERAL_TYPES = frozenset({
    "interval", "date", "time", "timetz", "timestamp", "timestamptz", "numeric", "decimal", "int", "int2", "int4",
    "int8", "integer", "smallint", "bigint", "real", "float", "float4", "float8", "text", "varchar", "char",
    "character", "bpchar", "bool", "boolean", "json", "jsonb", "uuid", "inet", "cidr", "macaddr", "money", "bytea",
    "point", "tsquery", "tsvector", "xml", "oid", "regclass", "name"})
_KEYWORD_NAMES = frozenset({"UNRESERVED_KEYWORD", "COL_NAME_KEYWORD", "TYPE_FUNC_NAME_KEYWORD"})
_MULTI_WORD = (("double", "precision"), ("character", "varying"), ("char", "varying"), ("bit", "varying"),
               ("timestamp", "with", "time", "zone"), ("timestamp", "without", "time", "zone"),
               ("time", "with", "time", "zone"), ("time", "without", "time", "zone"))


def plannable(text: str) -> str:
    """`text` with every `<built-in type> $n` (a typed literal that pg_stat_statements replaced) written as
    `CAST($n AS <type>)`, so it parses; anything else unchanged."""
    if "$" not in text:
        return text
    toks = [t for t in tokens(text) if t.name not in ("C_COMMENT", "SQL_COMMENT")]
    words = [text[t.start:t.end + 1].lower() if t.name == "IDENT" or t.kind in _KEYWORD_NAMES else None
             for t in toks]
    raw = [text[t.start:t.end + 1].lower() for t in toks]
    edits = []
    for i, t in enumerate(toks):
        if t.name != "PARAM" or not i or words[i - 1] is None:
            continue
        span = None
        for shape in _MULTI_WORD:
            k = i - len(shape)
            if k >= 0 and tuple(raw[k:i]) == shape and (k == 0 or words[k - 1] is None):
                span = k
                break
        if span is None and words[i - 1] in TYPED_LITERAL_TYPES and (i < 2 or words[i - 2] is None):
            span = i - 1
        if span is not None:
            edits.append((toks[span].start, t.end + 1, f"CAST({text[t.start:t.end + 1]} AS "
                                                     f"{' '.join(raw[span:i])})"))
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    return text


# Built-in functions that run SQL of their own: the XML exports run SELECT * on tables and views named or found
# (database_to_xml reads every view of the database), ts_stat and ts_rewrite run a query given as text. They are
# STABLE or VOLATILE; the planner evaluates a STABLE call whose arguments are constants while it estimates, so
# planning a statement that calls one (in any branch) can run views of the database's users with opsbook's rights.
RUNS_SQL = re.compile(r"(?:query|cursor|table|schema|database)_to_xml(?:schema|_and_xmlschema)?|ts_stat|ts_rewrite")


def runs_sql(text: str) -> str | None:
    """Why `text` may not be planned on the target because planning could run SQL through a built-in function
    (see RUNS_SQL), or None. A text PostgreSQL's parser refuses is refused too."""
    from pglast import parse_sql  # noqa: PLC0415 - ~60 ms; only statements about to be planned on the target
    from pglast.visitors import Visitor  # noqa: PLC0415

    class Calls(Visitor):
        def __init__(self):
            self.names: list[str] = []

        def visit_FuncCall(self, ancestors, node):  # noqa: N802 - pglast's visitor naming
            self.names.append(".".join(str(getattr(n, "sval", n)) for n in node.funcname))

    try:
        calls = Calls()
        calls(parse_sql(text))
    except Exception as e:  # noqa: BLE001 - pglast's parser: any failure means we cannot tell
        return f"not planned on the target: its text could not be parsed here ({' '.join(str(e).split())[:120]})"
    bad = sorted({n for n in calls.names if RUNS_SQL.fullmatch(n.rsplit(".", 1)[-1].lower())})
    if bad:
        return (f"not planned on the target: it calls {', '.join(bad[:3])}, which runs SQL of its own (views and "
                "functions of the database's users) while the planner estimates it")
    return None
