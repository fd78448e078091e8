"""The README's check table is generated from the registry and must match it (`make docs` regenerates)."""
from __future__ import annotations

from opsbook import docs


def test_readme_check_table_matches_the_registry():
    text = docs.readme_path().read_text()
    assert docs.current_block(text) == docs.render_block(), "README check table is stale: run `make docs`"


def test_readme_opens_with_the_two_commands():
    head = docs.readme_path().read_text()[:1500]
    assert "make demo" in head and "make test" in head
