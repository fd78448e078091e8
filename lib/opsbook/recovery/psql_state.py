"""What psql's lexer depends on, as a script would change it: the client encoding and standard_conforming_strings."""
from __future__ import annotations

import re

# Encodings PostgreSQL allows only on the client side, by every name it accepts (src/common/encnames.c, after its
# clean_encoding_name: letters and digits only, lower case). In these, a byte of a multibyte character can be
# 0x5C or 0x27: psql reads such a byte as part of the character, the guard (reading UTF-8) as `\` or `'`.
CLIENT_ONLY_ENCODINGS = {
    "sjis": "SJIS", "shiftjis": "SJIS", "mskanji": "SJIS", "win932": "SJIS", "windows932": "SJIS",
    "shiftjis2004": "SHIFT_JIS_2004", "big5": "BIG5", "win950": "BIG5", "windows950": "BIG5",
    "gbk": "GBK", "win936": "GBK", "windows936": "GBK", "uhc": "UHC", "win949": "UHC", "windows949": "UHC",
    "gb18030": "GB18030", "johab": "JOHAB",
}
# The spellings of `on` PostgreSQL's parse_bool accepts (unique prefixes of true and yes, on, 1), and DEFAULT.
BOOL_ON = {"t", "tr", "tru", "true", "y", "ye", "yes", "on", "1", "default"}
WATCHED = {"client_encoding", "names", "standard_conforming_strings"}
# Cheap tests before tokenizing a statement: every way to change a watched setting says SET, set_config or
# pg_settings (or hides them in a Unicode escape), and names the setting, perhaps through escapes.
_HINT_VERB = re.compile(r"set|u&", re.I)
_HINT_NAME = re.compile(r"encoding|names|conforming|pg_settings|\\|u&", re.I)

_TOKEN = re.compile(r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<estr>[eE]'(?:[^'\\]|\\.|'')*'?)
  | (?P<ustr>[uU]&'(?:[^']|'')*'?)
  | (?P<str>[bBxXnN]?'(?:[^']|'')*'?)
  | (?P<uqid>[uU]&"(?:[^"]|"")*"?)
  | (?P<qid>"(?:[^"]|"")*"?)
  | (?P<dollar>\$(?P<tag>[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$)
  | (?P<ident>[A-Za-z_\x80-\U0010ffff][\w$\x80-\U0010ffff]*)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<op>.)
""", re.S | re.X)
_E_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", re.S)
_U_ESCAPE = re.compile(r"\\(\\|[0-9A-Fa-f]{4}|\+[0-9A-Fa-f]{6})")
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def tokens(sql: str) -> list[tuple[str, str | None]]:
    """(kind, value) of each SQL token: identifiers in lower case, quoted names and literals decoded (None when
    they cannot be told for sure); kinds: ident, name, string, num, op."""
    out: list[tuple[str, str | None]] = []
    i, n = 0, len(sql)
    while i < n:
        m = _TOKEN.match(sql, i)
        kind, text = m.lastgroup, m.group(0)
        i = m.end()
        if kind == "ws":
            continue
        if kind == "dollar":
            tag = text
            j = sql.find(tag, i)
            body = sql[i:] if j < 0 else sql[i:j]
            i = n if j < 0 else j + len(tag)
            out.append(("string", body))
        elif kind == "estr":
            out.append(("string", _decode_e(text[2:-1]) if text.endswith("'") else None))
        elif kind == "ustr":
            out.append(("string", _decode_u(text[3:-1].replace("''", "'")) if text.endswith("'") else None))
        elif kind == "str":
            body = text[text.index("'") + 1:-1] if text.endswith("'") and len(text) > 1 else None
            out.append(("string", body.replace("''", "'") if body is not None else None))
        elif kind == "uqid":
            out.append(("name", _decode_u(text[3:-1].replace('""', '"')) if text.endswith('"') else None))
        elif kind == "qid":
            out.append(("name", text[1:-1].replace('""', '"') if len(text) > 1 and text.endswith('"') else None))
        elif kind == "ident":
            out.append(("ident", text.lower()))
        else:
            out.append((kind, text))
    # UESCAPE changes the escape character of the U& literal before it: its value cannot be told here
    for k in range(1, len(out)):
        if out[k] == ("ident", "uescape"):
            out[k - 1] = (out[k - 1][0], None)
    return out


def _decode_e(body: str) -> str | None:
    def one(m: re.Match) -> str:
        e = m.group(1)
        if e[0] == "x" and len(e) > 1:
            return chr(int(e[1:], 16))
        if e[0] in "uU" and len(e) > 1:
            return chr(int(e[1:], 16))
        if e[0] in "01234567":
            return chr(int(e, 8) & 0xFF)
        return _SIMPLE.get(e, e)

    try:
        return _E_ESCAPE.sub(one, body.replace("''", "'"))
    except (ValueError, OverflowError):
        return None


def _decode_u(body: str) -> str | None:
    try:
        return _U_ESCAPE.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1).lstrip("+"), 16)), body)
    except (ValueError, OverflowError):
        return None


def string_syntax_change(sql: str, depth: int = 0) -> str | None:
    """Why `sql` would make psql lex what follows differently from the guard (a client-only encoding, backslash
    escapes in plain strings), or None. Literals that look like SQL (function bodies, EXECUTE strings) are read
    too; a value that cannot be told for sure counts as a change."""
    if depth > 4 or not (_HINT_VERB.search(sql) and _HINT_NAME.search(sql)):
        return None
    toks = tokens(sql)
    for k, (kind, value) in enumerate(toks):
        if kind == "ident" and value == "set":
            j = k + 1
            if j < len(toks) and toks[j] in (("ident", "session"), ("ident", "local")):
                j += 1
            if j < len(toks) and toks[j][0] in ("ident", "name") and toks[j][1] in WATCHED:
                param = toks[j][1]
                if param == "names":
                    values = _values(toks, j + 1)
                    if values and values[0][0] != "op":  # `SET names = ...` is a column, not SET NAMES
                        if why := _judge("client_encoding", values):
                            return why
                elif j + 1 < len(toks) and toks[j + 1] in (("ident", "to"), ("op", "=")):
                    if why := _judge(param, _values(toks, j + 2)):
                        return why
                elif j + 1 < len(toks) and toks[j + 1] == ("ident", "from"):
                    continue  # SET ... FROM CURRENT: keeps the value in force
                else:
                    return f"SET {param} in a form that cannot be read"
        elif kind in ("ident", "name") and value == "set_config":
            if why := _set_config(toks, k + 1):
                return why
        elif kind == "ident" and value == "update":
            rest = [t for t in toks[k + 1:k + 5] if t not in (("ident", "only"), ("op", "."), ("ident", "pg_catalog"),
                                                                ("name", "pg_catalog"))]
            if rest and rest[0][0] in ("ident", "name") and rest[0][1] == "pg_settings":
                return "UPDATE pg_settings changes settings (it calls set_config)"
        elif kind == "string" and value and len(value) > 8:
            if why := string_syntax_change(value, depth + 1):
                return why
    return None


def _values(toks: list, j: int) -> list:
    out = []
    while j < len(toks):
        out.append(toks[j])
        if j + 1 < len(toks) and toks[j + 1] == ("op", ","):
            j += 2
            continue
        break
    return out


def _judge(param: str, values: list) -> str | None:
    if not values:
        return f"SET {param} without a value that can be read"
    for kind, value in values:
        if kind not in ("ident", "name", "string", "num") or value is None:
            return f"{param} set to a value that cannot be read"
        if param == "client_encoding":
            name = re.sub(r"[^a-z0-9]", "", value.lower())
            if name in CLIENT_ONLY_ENCODINGS:
                return (f"client_encoding set to {value!r} ({CLIENT_ONLY_ENCODINGS[name]}), a client-only encoding "
                        "in which psql reads bytes the guard takes for quotes and backslashes; dump with -E UTF8")
        elif value.strip().lower() not in BOOL_ON:
            return (f"standard_conforming_strings set to {value!r}: with backslash escapes in plain strings psql "
                    "would read the script differently from the guard; pg_dump always writes `on`")
    return None


def _set_config(toks: list, j: int) -> str | None:
    """set_config('name', value, is_local): judged when the name is a literal naming a watched setting."""
    if j >= len(toks) or toks[j] != ("op", "("):
        return None
    if j + 1 >= len(toks):
        return None
    kind, name = toks[j + 1]
    if kind == "string" and name is None:
        return "set_config with a name that cannot be read"
    if kind != "string" or name.strip().lower() not in ("client_encoding", "standard_conforming_strings"):
        return None
    param = name.strip().lower()
    if j + 3 < len(toks) and toks[j + 2] == ("op", ",") and toks[j + 3][0] == "string" and \
            j + 4 < len(toks) and toks[j + 4] == ("op", ","):
        return _judge(param, [toks[j + 3]])
    return f"set_config of {param} with a value that cannot be read"
