"""A runbook's parameters: read from its `parameters`-tagged cell, and `-p NAME=VALUE` checked against them.

Each line is `name: type = default  # help`, the help optionally declaring a bound (see opsbook.config.bounds):
`[1, 3650]`, `(0, inf]`, `{free, pro}` or `<file>`.
"""
from __future__ import annotations

import ast
import io
import json
import math
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bounds import Bound
from .bounds import parse as parse_bound
from ..core.errors import OpsbookError, ParameterError

TYPES = ("str", "int", "float", "bool", "list", "dict", "str | None", "int | None", "float | None", "bool | None",
         "list[int]", "list[str]")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null"}


@dataclass(frozen=True)
class Param:
    """One parameter: `name: type = default  # help [bound]`."""

    name: str
    type: str
    default: Any
    help: str = ""
    bound: Bound | None = None

    @property
    def allowed(self) -> str:
        """The declared bound as written, e.g. `[1, 3650]`, or "" when the type is the only rule."""
        return self.bound.text if self.bound else ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "default": self.default, "help": self.help,
                "allowed": self.bound.to_dict() if self.bound else None}


def read_notebook(path: str | Path) -> dict[str, Any]:
    """The notebook as plain JSON (cheaper than nbformat for metadata and one cell)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise OpsbookError(f"{path} is not a readable notebook: {type(e).__name__}: {e}") from None
    if not isinstance(nb, dict):
        raise OpsbookError(f"{path} is not a notebook (no JSON object at the top)")
    return nb


def cell_source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def parameters_cell(nb: dict[str, Any]) -> dict[str, Any] | None:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def describe(notebook_path: str | Path) -> list[Param]:
    """The parameters a runbook declares, in cell order; [] when it has no parameters cell."""
    cell = parameters_cell(read_notebook(notebook_path))
    return parse(cell_source(cell), where=Path(notebook_path).stem) if cell else []


def parse(source: str, where: str = "runbook") -> list[Param]:
    """Parse `name: type = default  # help` lines with ast; help comes from the comment on the line."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise ParameterError(f"{where}: parameters cell is not valid Python (line {e.lineno}): {e.msg}") from None
    comments = _comments(source)
    out = []
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, kind = node.target.id, _normalise(ast.unparse(node.annotation))
            if kind not in TYPES:
                raise ParameterError(f"{where}: parameter {name!r} has type {kind!r}; use one of {', '.join(TYPES)}")
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, kind = node.targets[0].id, None
        else:
            continue  # imports or other statements: not parameters
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise ParameterError(f"{where}: default of parameter {name!r} must be a literal") from None
        kind = kind or _infer(default)
        text = comments.get(node.lineno) or comments.get(node.end_lineno or node.lineno, "")
        bound = parse_bound(text, kind, f"{where}: parameter {name!r}")
        if bound is not None and bound.kind is None and default is not None:
            bound.check(f"{where}: the default of {name}", default)  # a runbook that breaks its own rule
        out.append(Param(name, kind, default, text, bound))
    return out


def coerce(spec: list[Param], raw: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate and convert values (CLI strings or Python objects) by the declared types and bounds.

    Unknown names, wrong types and values outside a declared bound raise ParameterError with one line that names
    the parameter and what it expects. `context` ({"config", "target"}) serves bounds that depend on them, such
    as `<plan>` (the target's price list).
    """
    by_name = {p.name: p for p in spec}
    known = ", ".join(by_name) or "none"
    out = {}
    for name, value in raw.items():
        p = by_name.get(name)
        if p is None:
            raise ParameterError(f"unknown parameter {name!r}; known: {known}")
        try:
            out[name] = _from_text(p.type, value) if isinstance(value, str) else _check(p.type, value)
        except (ValueError, TypeError):
            shown = value if isinstance(value, str) else repr(value)
            raise ParameterError(f"parameter {name!r} expects {p.type}, got {_short(shown)!r}; "
                                 f"known: {known}") from None
        if p.bound is not None:
            p.bound.check(f"parameter {name!r}", out[name], context)
    return out


def preflight(nb: dict[str, Any], values: dict[str, Any], context: dict[str, Any]) -> None:
    """The runbook's own check of its parameters taken together (`metadata.opsbook.check_parameters`, a
    "module:function" called with (values, config, target)), before anything runs; it raises UsageError."""
    spec = nb.get("metadata", {}).get("opsbook", {}).get("check_parameters")
    if not spec:
        return
    import importlib  # noqa: PLC0415

    module, _, func = str(spec).partition(":")
    getattr(importlib.import_module(module), func)(values, context.get("config"), context.get("target"))


def parse_assignments(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`NAME=VALUE` strings from the command line into a dict; the value may itself contain '='."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"parameter {_short(pair)!r} must look like NAME=VALUE")
        out[name.strip()] = value
    return out


# ---------------------------------------------------------------------------------------------- internals
def _comments(source: str) -> dict[int, str]:
    out = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def _normalise(annotation: str) -> str:
    s = " ".join(annotation.replace("|", " | ").split())
    for inner in ("str", "int", "float", "bool"):
        if s in (f"Optional[{inner}]", f"None | {inner}"):
            return f"{inner} | None"
    return s.replace("List[", "list[")


def _infer(default: Any) -> str:
    if default is None:
        return "str | None"
    return type(default).__name__ if type(default).__name__ in TYPES else "str"


def _from_text(kind: str, text: str) -> Any:
    s = text.strip()
    if kind.endswith(" | None"):
        return None if s.lower() in _NONE else _from_text(kind[: -len(" | None")], text)
    if kind == "str":
        return text
    if kind == "int":
        return int(s)  # int("3.5") and int("") raise: strict
    if kind == "float":
        value = float(s)
        if not math.isfinite(value):
            raise ValueError(s)
        return value
    if kind == "bool":
        if s.lower() in _TRUE:
            return True
        if s.lower() in _FALSE:
            return False
        raise ValueError(s)
    if kind in ("list", "dict"):
        return _check(kind, json.loads(s))
    if kind in ("list[int]", "list[str]"):
        if s.startswith("["):
            return _check(kind, json.loads(s))
        items = [x.strip() for x in s.split(",") if x.strip()] if s else []
        return [int(x) for x in items] if kind == "list[int]" else items
    raise ValueError(kind)  # pragma: no cover - parse() only admits TYPES


def _check(kind: str, value: Any) -> Any:
    """A Python value of the declared type, passed in-process; ints are accepted where floats are declared."""
    if kind.endswith(" | None"):
        return None if value is None else _check(kind[: -len(" | None")], value)
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "bool": isinstance(value, bool),
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
        "list[int]": isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        raise TypeError(kind)
    return float(value) if kind == "float" else value


def _short(text: Any, limit: int = 60) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."
