"""docs/checks.md, the check catalogue, generated from the registry (`make docs`); tests/test_docs.py keeps it current."""
from __future__ import annotations

from pathlib import Path

from .catalogue import check_catalogue

INTRO = """# Check catalogue

<!-- Generated from the check registry by `make docs`: edit the checks, not this file. -->

Every check opsbook runs: its id (the name a finding carries in reports and sidecar JSON), what it looks at, its
thresholds with their default, unit and source, and the runbooks that run it. `opsbook checks` prints the same list
(`--json` for machines). A threshold is overridden in `opsbook.toml`, for all targets (`[thresholds."CHECK_ID"]`) or
for one (`[targets.NAME.thresholds."CHECK_ID"]`; see [configuration](configuration.md)), or for one run with the
runbook's `thresholds` parameter. The sources named are in [sources](sources/guides.md).

"""


def catalogue_markdown() -> str:
    """The table: one row per check, sorted by id."""
    lines = ["| id | what it looks at | thresholds (default, unit: source) | runbooks |", "|---|---|---|---|"]
    for row in check_catalogue():
        th = "<br>".join(f"`{t['name']}` = {t['default']} {t['unit']}: {t['source']}" for t in row["thresholds"])
        cells = [f"`{row['id']}`", row["description"], th or "-", ", ".join(row["runbooks"])]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def render() -> str:
    return INTRO + catalogue_markdown()


def docs_path() -> Path:
    return Path(__file__).resolve().parents[3] / "docs" / "checks.md"


def update(path: Path | None = None) -> bool:
    """Write docs/checks.md; True when it changed."""
    path = path or docs_path()
    old = path.read_text() if path.is_file() else None
    new = render()
    if new != old:
        path.write_text(new)
    return new != old


if __name__ == "__main__":
    print("docs/checks.md updated" if update() else "docs/checks.md already current")
