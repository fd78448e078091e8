"""log_line_prefix as a regular expression: given, read with SHOW, or detected from the first lines."""
from __future__ import annotations

import re

SEVERITIES = ("DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR",
              "LOG", "FATAL", "PANIC", "DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION", "STATEMENT")
_SEVS = "(?:" + "|".join(SEVERITIES) + "):  "
_SEV = "(?P<severity>" + "|".join(SEVERITIES) + "):  "
_FIRSTS = "".join(sorted({s[0] for s in SEVERITIES}))  # the letters a severity can begin with
# the zone: an abbreviation or a numeric offset ("+0530", "-03:30"); not any colon after it (RDS: "%t:%r:")
_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+/_-]+(?::\d\d)?)?"
# escape -> (group name or None, pattern); values may be empty (background processes have no user or database)
ESCAPES = {
    "a": ("application", r".*?"), "u": ("user", r".*?"), "d": ("database", r".*?"),
    "r": ("client", r"[^ ]*?"), "h": ("client", r"[^ ]*?"), "b": (None, r".*?"), "p": ("pid", r"\d+"),
    "P": (None, r"\d*"), "t": ("ts", _TS), "m": ("ts", _TS), "n": ("epoch", r"\d+(?:\.\d+)?"),
    "i": (None, r".*?"), "e": ("sqlstate", r"[0-9A-Z]{5}"), "c": (None, r"[0-9a-f]+\.[0-9a-f]+"),
    "l": (None, r"\d+"), "s": (None, _TS), "v": (None, r"[^ ]*?"), "x": (None, r"\d+"), "Q": (None, r"-?\d+"),
}
_R = ("field", *ESCAPES["r"])  # the one item of a %r, told apart by identity
# prefixes met in the wild, tried in order when none is given: PostgreSQL's default, Debian's, pgbadger's
# recommendations, Amazon RDS, Supabase
COMMON = ("%m [%p] ", "%m [%p] %q%u@%d ", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
          "%t [%p]: user=%u,db=%d,app=%a,client=%h ", "%t:%r:%u@%d:[%p]:", "%m [%p] %q[%u@%d] ",
          "%t [%p]: [%l-1] ", "%m [%p] %e ", "%t [%p] ", "%m %p ", "%t ")


class UnknownPrefix(ValueError):
    """No prefix explains the lines."""


# %r is "host(port)" (PostgreSQL's remote_host and remote_port): the client is the host alone, so that the same
# address on many source ports reads as one address (a password spray from one host is one client)
_HOST_PORT = r"(?P<client>[^ (]*(?=\(\d*\))|[^ (]*?)(?:\(\d*\))?"


def compile_prefix(prefix: str) -> re.Pattern:
    """The regex matching one primary line written with this log_line_prefix (named groups: ts, pid, user,
    database, application, client, sqlstate, severity, message).

    Linear in the line's length: each escape is an atomic group with the literal text after it, so the engine
    never comes back to move an earlier field's end (that backtracking cost minutes on a line of a few KB). A
    field ends at the first place its following text matches; the last one, where a severity follows."""
    items = _items(prefix)
    out, seen, done, optional = [], set(), set(), False
    for k, item in enumerate(items):
        if k in done:
            continue
        if item[0] == "q":  # what follows is absent for non-session processes
            out.append("(?:")
            optional = True
        elif item[0] == "lit":
            out.append(_lit(item[1], ends=k == len(items) - 1))
        else:
            _, name, pat = item
            if item is _R and name not in seen:
                seen.add(name)
                name, pat = None, _HOST_PORT
            follow = ""
            if k + 1 < len(items) and items[k + 1][0] == "lit":
                follow = _lit(items[k + 1][1], ends=k + 1 == len(items) - 1)
                done.add(k + 1)
            if any(it[0] == "field" for it in items[k + 1:]):
                out.append(f"(?>{_group(name, seen, pat)}{follow})")
            else:  # the last field: it ends where its following text and a severity begin
                first = items[k + 1][1][:1] if k + 1 in done else ""
                out.append(f"(?>{_last(name, seen, pat, follow, first)}{follow}(?={_SEVS}))")
    if optional:
        out.append(")?")
    return re.compile("".join(out) + _SEV + "(?P<message>.*)", re.S)


def _group(name: str | None, seen: set, pat: str) -> str:
    if name and name not in seen:
        seen.add(name)
        return f"(?P<{name}>{pat})"
    return f"(?:{pat})"


def _last(name: str | None, seen: set, pat: str, follow: str, first: str) -> str:
    """The last field, as a scan that takes a run of characters which cannot begin its end (a space, the first
    character of the text after it, a severity's first letter) in one step: `.*?` would try the end at each
    character."""
    if pat not in (".*?", "[^ ]*?"):
        return _group(name, seen, pat)
    one = "." if pat == ".*?" else "[^ ]"
    run = "[^" + re.escape(" " + first) + _FIRSTS + "]"
    return _group(name, seen, f"(?>(?:{run}+|(?!{follow}{_SEVS}){one}{run}*)*)")


def _lit(text: str, *, ends: bool) -> str:
    # a trailing space may be trimmed
    return re.escape(text[:-1]) + " ?" if ends and text.endswith(" ") else re.escape(text)


def _items(prefix: str) -> list[tuple]:
    """("lit", text) / ("field", group name or None, pattern) / ("q",), literal runs merged."""
    items: list[tuple] = []
    i = 0
    while i < len(prefix):
        ch, text = prefix[i], None
        if ch == "%" and i + 1 < len(prefix):
            i += 1
            while prefix[i] in "-0123456789" and i + 1 < len(prefix):  # padding like %-10a
                i += 1
            esc = prefix[i]
            if esc == "q":
                items.append(("q",))
            elif esc == "r":
                items.append(_R)
            elif esc in ESCAPES:
                items.append(("field", *ESCAPES[esc]))
            else:
                text = "%" if esc == "%" else "%" + esc
        else:
            text = ch
        if text is not None:
            if items and items[-1][0] == "lit":
                items[-1] = ("lit", items[-1][1] + text)
            else:
                items.append(("lit", text))
        i += 1
    return items


def detect_prefix(lines: list[str]) -> str | None:
    """The common prefix that explains most of these lines (None: none explains half of them)."""
    lines = [ln for ln in lines if ln.strip() and not ln.startswith("\t")]
    if not lines:
        return None
    best, best_n = None, 0
    for p in COMMON:
        rx = compile_prefix(p)
        n = sum(1 for ln in lines if _plausible(rx.match(ln)))
        if n > best_n:  # earlier (more specific) prefixes win ties
            best, best_n = p, n
    return best if best_n * 2 >= len(lines) else None


def _plausible(m) -> bool:
    # a guessed prefix whose user or database swallowed a space matched by accident (the real prefix has more)
    return m is not None and not any(" " in (m.groupdict().get(k) or "") for k in ("user", "database", "client"))


# no prefix known: a timestamp first, the first severity after it, the first [pid] before that severity. Linear:
# the timestamp is atomic and the text is skipped once, a run of characters that cannot begin a severity or a
# [pid] at a time
GENERIC = re.compile(r"(?P<ts>(?>" + _TS + r"))\D(?>(?:[^[" + _FIRSTS + r"]+|(?!" + _SEVS + r"|\[\d+\]).[^["
                     + _FIRSTS + r"]*)*)(?:\[(?P<pid>\d+)\](?>(?:[^" + _FIRSTS + "]+|(?!" + _SEVS + r").[^" + _FIRSTS
                     + "]*)*))?" + _SEV + "(?P<message>.*)", re.S)
