"""The documentation a user reads: docs/checks.md generated from the registry, every config key documented, every
relative link resolving inside the repository, and a README that starts with the two commands."""
from __future__ import annotations

import re
from pathlib import Path

from opsbook.checks import docs
from opsbook.checks.catalogue import check_catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_the_check_catalogue_page_matches_the_registry():
    assert docs.docs_path().read_text() == docs.render(), "docs/checks.md is stale: run `make docs`"
    text = docs.docs_path().read_text()
    for row in check_catalogue():
        assert f"| `{row['id']}` |" in text


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text()[:1500]
    assert "make demo" in head and "make test" in head


def _documented(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_][a-z0-9_]*)`", text))


def test_every_configuration_key_is_in_the_configuration_reference():
    from opsbook.config.schema import LIMIT_KEYS, SECTIONS, TARGET
    from opsbook.schedule.notify.spec import COMMON_KEYS, KIND_KEYS
    from opsbook.schedule.spec import KEYS as SCHEDULE_KEYS

    keys = set(TARGET) | set(SECTIONS) | set(SCHEDULE_KEYS) | set(COMMON_KEYS) | set(LIMIT_KEYS)
    keys |= {k for section in SECTIONS.values() if isinstance(section, dict) for k in section}
    keys |= {k for kind in KIND_KEYS.values() for k in kind}
    missing = sorted(keys - _documented((ROOT / "docs" / "configuration.md").read_text()))
    assert missing == [], f"docs/configuration.md does not name: {missing}"


def test_every_runbook_has_its_row_in_the_readme_and_its_page():
    readme = (ROOT / "README.md").read_text()
    for notebook in sorted((ROOT / "runbooks").glob("*.ipynb")):
        name = notebook.stem
        assert f"[`{name}`](docs/runbooks/{name}.md)" in readme, name
        assert (ROOT / "docs" / "runbooks" / f"{name}.md").is_file(), name


def test_every_relative_link_resolves_inside_the_repository():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists() or ROOT not in path.parents:
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == [], broken
    assert not any("../shared" in p.read_text() for p in pages), "a user's clone has no ../shared"


def test_the_layers_in_development_md_are_the_layers_of_the_code():
    import structure

    floors = structure.layers(structure.top_level(structure.imports()))
    actual = {p.removeprefix("opsbook."): k for k, floor in enumerate(floors, 1) for p in floor if p != "opsbook"}
    text = (ROOT / "docs" / "development.md").read_text()
    documented = {name: int(floor) for floor, names in re.findall(r"^\| (\d+) \| ([^|]+) \|", text, re.M)
                  for name in re.findall(r"`([a-z]+)`", names)}
    assert documented == actual
