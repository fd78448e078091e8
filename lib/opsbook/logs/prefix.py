"""log_line_prefix as a regular expression: given, read with SHOW, or detected from the first lines."""
from __future__ import annotations

import re

SEVERITIES = ("DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR",
              "LOG", "FATAL", "PANIC", "DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION", "STATEMENT")
_SEV = "(?P<severity>" + "|".join(SEVERITIES) + "):  "
_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+:/_-]+)?"
# escape -> (group name or None, pattern); values may be empty (background processes have no user or database)
ESCAPES = {
    "a": ("application", r".*?"), "u": ("user", r".*?"), "d": ("database", r".*?"),
    "r": ("client", r"[^ ]*?"), "h": ("client", r"[^ ]*?"), "b": (None, r".*?"), "p": ("pid", r"\d+"),
    "P": (None, r"\d*"), "t": ("ts", _TS), "m": ("ts", _TS), "n": ("epoch", r"\d+(?:\.\d+)?"),
    "i": (None, r".*?"), "e": ("sqlstate", r"[0-9A-Z]{5}"), "c": (None, r"[0-9a-f]+\.[0-9a-f]+"),
    "l": (None, r"\d+"), "s": (None, _TS), "v": (None, r"[^ ]*?"), "x": (None, r"\d+"), "Q": (None, r"-?\d+"),
}
# prefixes met in the wild, tried in order when none is given: PostgreSQL's default, Debian's, pgbadger's
# recommendations, Amazon RDS, Supabase
COMMON = ("%m [%p] ", "%m [%p] %q%u@%d ", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
          "%t [%p]: user=%u,db=%d,app=%a,client=%h ", "%t:%r:%u@%d:[%p]:", "%m [%p] %q[%u@%d] ",
          "%t [%p]: [%l-1] ", "%m [%p] %e ", "%t [%p] ", "%m %p ", "%t ")


class UnknownPrefix(ValueError):
    """No prefix explains the lines."""


def compile_prefix(prefix: str) -> re.Pattern:
    """The regex matching one primary line written with this log_line_prefix (named groups: ts, pid, user,
    database, application, client, sqlstate, severity, message)."""
    out, seen, i, optional = [], set(), 0, False
    while i < len(prefix):
        ch = prefix[i]
        if ch == "%" and i + 1 < len(prefix):
            i += 1
            while prefix[i] in "-0123456789" and i + 1 < len(prefix):  # padding like %-10a
                i += 1
            esc = prefix[i]
            if esc == "%":
                out.append("%")
            elif esc == "q":  # what follows is absent for non-session processes
                out.append("(?:")
                optional = True
            elif esc in ESCAPES:
                name, pat = ESCAPES[esc]
                if name and name not in seen:
                    seen.add(name)
                    out.append(f"(?P<{name}>{pat})")
                else:
                    out.append(f"(?:{pat})")
            else:
                out.append(re.escape("%" + esc))
        else:
            out.append(r"\s*" if ch == " " and i == len(prefix) - 1 else re.escape(ch))
        i += 1
    if optional:
        out.append(")?")
    if prefix.endswith(" ") and out and out[-1] == r"\s*":
        out[-1] = " ?"  # a trailing space may be trimmed
    return re.compile("".join(out) + _SEV + "(?P<message>.*)", re.S)


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


GENERIC = re.compile(r"(?P<ts>" + _TS + r")\D.*?(?:\[(?P<pid>\d+)\].*?)?" + _SEV + "(?P<message>.*)", re.S)
