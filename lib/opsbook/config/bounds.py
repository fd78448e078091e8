"""Declared bounds of parameters and config values: a range, a choice set or a named kind, checked in one place.

A runbook declares a parameter's bound in the comment of its line in the `parameters` cell:

    horizon_days: int = 180  # how far ahead the forecast looks, in days [1, 3650]
    rto_minutes: float | None = None  # recovery time objective in minutes (0, 10080]
    dump_format: str = "custom"  # pg_dump format {custom, directory, plain, tar}
    usage_csv: str | None = None  # a usage CSV exported from the dashboard <file>

- `[lo, hi]` a number range; `(` and `)` exclude an end; `inf` leaves the top open: `[0, inf]`.
- `{a, b, c}` one of these values, exactly as written (ints for an int parameter).
- `<kind>` a named check (KINDS below): an existing file or folder, a table name, freshness rules, a plan.
For a list parameter the bound applies to each element; `None` (no value) is always allowed where the type has it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from ..core.errors import ParameterError

_NUM = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|inf)"
_RANGE = re.compile(rf"(?<![\w\]])([\[(])\s*({_NUM})\s*,\s*({_NUM})\s*([\])])(?![\w\[])")
_CHOICES = re.compile(r"(?<!\w)\{\s*([\w.+-]+(?:\s*,\s*[\w.+-]+)+)\s*\}")
_KIND = re.compile(r"<([a-z_]+)>")

# One identifier as PostgreSQL reads it without quotes, or a double-quoted one (no NUL, "" for a quote).
_IDENT = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\x00]|"")+")'
TABLE_NAME = re.compile(rf"{_IDENT}(?:\.{_IDENT})?")
COLUMN_NAME = re.compile(_IDENT)


@dataclass(frozen=True)
class Bound:
    """What values a parameter admits beyond its type."""

    text: str  # as declared, e.g. "[1, 3650]"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    kind: str | None = None

    def check(self, name: str, value: Any, context: dict[str, Any] | None = None) -> None:
        """Raise ParameterError (one line naming the parameter and the bound) unless `value` is within it."""
        if value is None:
            return
        if isinstance(value, list):
            for item in value:
                self.check(name, item, context)
            return
        if self.kind:
            KINDS[self.kind](name, value, context or {})
        elif self.choices:
            if value not in self.choices:
                raise ParameterError(f"{name} must be one of {', '.join(map(str, self.choices))}, got {_shown(value)}")
        elif self.low is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return  # the type check said what was wrong
            if not math.isfinite(value) or not self.admits(value):
                raise ParameterError(f"{name} must be in {self.text}{self.meaning()}, got {_shown(value)}")

    def admits(self, value: float) -> bool:
        lo_ok = value > self.low if self.low_open else value >= self.low
        hi_ok = value < self.high if self.high_open else value <= self.high
        return lo_ok and hi_ok

    def meaning(self) -> str:
        """` (at least 1)`, ` (more than 0)`: the range in words, for the error message."""
        if self.high == math.inf:
            return f" ({'more than' if self.low_open else 'at least'} {_num(self.low)})"
        return ""

    def to_dict(self) -> dict[str, Any]:
        if self.kind:
            return {"kind": self.kind}
        if self.choices:
            return {"choices": list(self.choices)}
        return {"min": self.low, "max": None if self.high == math.inf else self.high,
                "min_exclusive": self.low_open, "max_exclusive": self.high_open}


def parse(comment: str, kind: str, where: str) -> Bound | None:
    """The bound declared in a parameter's help comment, or None; `kind` is the parameter's type."""
    base = kind.removesuffix(" | None").removeprefix("list[").removesuffix("]")
    m = _KIND.search(comment)
    if m:
        if m.group(1) not in KINDS:
            raise ParameterError(f"{where}: unknown bound <{m.group(1)}>; known: "
                                 f"{', '.join(f'<{k}>' for k in KINDS)}")
        return Bound(m.group(0), kind=m.group(1))
    if base in ("int", "float"):
        m = _RANGE.search(comment)
        if m:
            low, high = float(m.group(2)), float(m.group(3))
            if math.isnan(low) or math.isnan(high) or low > high or low == math.inf:
                raise ParameterError(f"{where}: range {m.group(0)} is empty")
            return Bound(m.group(0), low, high, m.group(1) == "(", m.group(4) == ")")
    if base in ("int", "float", "str"):
        m = _CHOICES.search(comment)
        if m:
            items = [x.strip() for x in m.group(1).split(",")]
            try:
                values = tuple(int(x) for x in items) if base == "int" else \
                    tuple(float(x) for x in items) if base == "float" else tuple(items)
            except ValueError:
                raise ParameterError(f"{where}: choices {m.group(0)} are not all {base}") from None
            return Bound(m.group(0), choices=values)
    return None


# ---------------------------------------------------------------------------------------------- named kinds
def _file(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    from .paths import user_path  # noqa: PLC0415

    path = user_path(str(value))
    if not path.exists():
        raise ParameterError(f"{name}: file {value} does not exist")
    if not path.is_file():
        raise ParameterError(f"{name}: {value} is not a file")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise ParameterError(f"{name}: file {value} cannot be read ({e.strerror})") from None


def _dir(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    from .paths import user_path  # noqa: PLC0415

    path = user_path(str(value))
    if not path.is_dir():
        raise ParameterError(f"{name}: folder {value} does not exist" if not path.exists()
                             else f"{name}: {value} is not a folder")


def _existing(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    from .paths import user_path  # noqa: PLC0415

    if not user_path(str(value)).exists():
        raise ParameterError(f"{name}: {value} does not exist")


def _table(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    check_table_name(str(value), name)


def _columns(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    parts = [c.strip() for c in str(value).split(",")]
    bad = [c for c in parts if not COLUMN_NAME.fullmatch(c)]
    if bad or not parts:
        raise ParameterError(f"{name}: {_shown(bad[0] if bad else value)} is not a column name "
                             "(letters, digits, _ and $, or a double-quoted name); separate several with commas")


def _freshness(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    check_freshness(value, name)


def _month(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    """YYYY-MM (a real month), or empty for the default."""
    text = str(value)
    if text and not (re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text)):
        raise ParameterError(f"{name} must be a month as YYYY-MM (e.g. 2026-11), or empty, got {_shown(value)}")


def _time(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    """`now`, `now-2h` or ISO 8601 with a zone, read by the post-mortem's own parser."""
    from .when import parse_when  # noqa: PLC0415

    parse_when(str(value), name=name)


def _timezone(name: str, value: Any, _ctx: dict[str, Any]) -> None:
    """An IANA time zone name (Europe/Berlin), or empty for UTC."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    text = str(value)
    if not text:
        return
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParameterError(f"{name} must be an IANA time zone such as Europe/Berlin, or empty for UTC, "
                             f"got {_shown(value)}") from None


def _plan(name: str, value: Any, ctx: dict[str, Any]) -> None:
    known = list(_prices(ctx).plans())
    if value not in known:
        raise ParameterError(f"{name} must be one of {', '.join(known)} (the price list's plans), got {_shown(value)}")


def _compute(name: str, value: Any, ctx: dict[str, Any]) -> None:
    known = list(_prices(ctx).sizes())
    if value not in known:
        raise ParameterError(f"{name} must be one of {', '.join(known)} (the price list's compute sizes), "
                             f"got {_shown(value)}")


def _prices(ctx: dict[str, Any]):
    from .pricing import load  # noqa: PLC0415 - only runbooks with a plan parameter pay for it

    return load(ctx.get("config"), ctx.get("target"))


KINDS: dict[str, Callable[[str, Any, dict[str, Any]], None]] = {
    "file": _file, "dir": _dir, "existing": _existing, "table": _table, "columns": _columns,
    "freshness": _freshness, "plan": _plan, "compute": _compute, "month": _month,
    "time": _time, "timezone": _timezone,
}


# ---------------------------------------------------------------------------------------------- shared checks
def check_table_name(text: str, what: str) -> None:
    """`name` or `schema.name`: unquoted identifiers, or double-quoted ones; never a quote, `;` or NUL loose."""
    if not TABLE_NAME.fullmatch(text):
        raise ParameterError(f"{what}: {_shown(text)} is not a table name (name or schema.name: letters, digits, "
                             '_ and $, or a double-quoted name)')


def check_freshness(rules: Any, what: str) -> None:
    """Freshness rules: {table name: {column = name, max_age_hours = a positive number}}."""
    if not isinstance(rules, dict):
        raise ParameterError(f"{what} must be a table keyed by table name")
    for table, rule in rules.items():
        check_table_name(str(table), f"{what} key")
        if not isinstance(rule, dict):
            raise ParameterError(f"{what}[{_shown(table)}] must be a table with column and max_age_hours")
        unknown = set(rule) - {"column", "max_age_hours"}
        if unknown:
            raise ParameterError(f"{what}[{_shown(table)}] has unknown key {_shown(sorted(unknown)[0])}; "
                                 "known: column, max_age_hours")
        column = rule.get("column")
        if not isinstance(column, str) or not COLUMN_NAME.fullmatch(column):
            raise ParameterError(f"{what}[{_shown(table)}].column must be a column name, got {_shown(column)}")
        age = rule.get("max_age_hours")
        if age is not None and (isinstance(age, bool) or not isinstance(age, (int, float)) or
                                not math.isfinite(age) or age <= 0):
            raise ParameterError(f"{what}[{_shown(table)}].max_age_hours must be a positive number of hours, "
                                 f"got {_shown(age)}")


def check_number(value: Any, what: str, low: float = 0, *, low_open: bool = False, high: float = math.inf) -> None:
    """A finite number within [low, high] (or above low with low_open): config values use the same words."""
    b = Bound(f"{'(' if low_open else '['}{_num(low)}, {_num(high)}]", low, high, low_open)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{what} must be a number, got {_shown(value)}")
    b.check(what, value)


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return "inf" if x == math.inf else (str(int(x)) if float(x).is_integer() else str(x))


def _shown(value: Any, limit: int = 60) -> str:
    s = repr(value)  # repr: a NUL or a full-width letter shows as what it is
    return s if len(s) <= limit else s[: limit - 4] + "...'"


def check_thresholds(check_id: str, defaults: dict[str, Any], values: dict[str, Any]) -> None:
    """Resolved thresholds of one check: finite, not negative, and each warning/critical pair in the order its
    defaults have (most are "higher is worse"; cache.hit_ratio's warning is above its critical)."""
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ParameterError(f"threshold {check_id}.{key} must be a finite number, got {_shown(value)}")
        if value < 0 <= default:
            raise ParameterError(f"threshold {check_id}.{key} must not be negative, got {_num(value)}")
    pairs = [("warning", "critical")] + [(k, "critical_" + k[len("warning_"):]) for k in defaults
                                         if k.startswith("warning_")]
    for warn, crit in pairs:
        if not all(isinstance(defaults.get(k), (int, float)) for k in (warn, crit)):
            continue
        rising = defaults[warn] <= defaults[crit]
        w, c = values[warn], values[crit]
        if (w > c) if rising else (w < c):
            side = "above" if rising else "below"
            raise ParameterError(f"threshold {check_id}: {warn} ({_num(w)}) is {side} {crit} ({_num(c)}); a warning "
                                 f"comes before the critical level (defaults {_num(defaults[warn])} and "
                                 f"{_num(defaults[crit])})")
