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
