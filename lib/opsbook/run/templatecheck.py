"""What a committed runbook template may not hold: outputs, execution counts, an injected-parameters cell.

`python -m opsbook.run.templatecheck [--staged] [NOTEBOOK ...]` (the pre-commit hook in .githooks/): with --staged,
the runbooks staged in git are read as staged (not as they are on disk); exit 1 with one line per problem.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

STAGED_PATHSPEC = "runbooks/*.ipynb"


def problems(text: str, where: str) -> list[str]:
    """One line per thing a template must not carry; [] for a clean template."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError) as e:
        return [f"{where}: not a readable notebook ({type(e).__name__})"]
    found = []
    for number, cell in enumerate(cells, 1):
        found += [f"{where}: cell {number} {what}" for what in _cell_problems(cell)]
    return found


def _cell_problems(cell: Any) -> list[str]:
    if not isinstance(cell, dict):
        return ["is not a cell"]
    out = []
    if "injected-parameters" in (cell.get("metadata") or {}).get("tags", []):
        out.append("is papermill's injected-parameters cell (a run's copy, not the template)")
    if cell.get("cell_type") == "code":
        if cell.get("outputs"):
            out.append(f"has {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            out.append(f"has execution count {cell['execution_count']}")
    return out


def staged_runbooks() -> list[tuple[str, str]]:
    """(path, staged text) of every runbook added or changed in git's index."""
    names = _git("diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--", STAGED_PATHSPEC)
    return [(name, _git("show", f":{name}")) for name in names.split("\0") if name]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every notebook is clean, 1 when one is not (a line per problem), 2 on bad usage."""
    args = sys.argv[1:] if argv is None else argv
    if not args or (args[0] == "--staged" and len(args) > 1):
        print("usage: python -m opsbook.run.templatecheck --staged | NOTEBOOK ...", file=sys.stderr)
        return 2
    try:
        notebooks = staged_runbooks() if args == ["--staged"] else [(p, _read(p)) for p in args]
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"templatecheck: cannot read the staged runbooks: {' '.join(str(getattr(e, 'stderr', '') or e).split())}",
              file=sys.stderr)
        return 2
    found = [line for path, text in notebooks for line in problems(text, path)]
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print("runbook templates are committed clean: clear their outputs, drop any injected-parameters cell "
              "(and work in a copy: `opsbook lab RUNBOOK --target T`)", file=sys.stderr)
    return 1 if found else 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        return f"<unreadable: {e.strerror}>"  # reported as not a readable notebook


if __name__ == "__main__":
    sys.exit(main())
