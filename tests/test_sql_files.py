"""STYLE 1-2: the loader and the files agree: every check finds its SQL on every supported version, no file unused."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsbook import checks
from opsbook.database import sql

SUPPORTED = [130000, 140000, 150000, 160000, 170000, 180000]
LIB = Path(sql.__file__).resolve().parents[2]  # lib/opsbook


def test_every_check_query_resolves_on_every_supported_version():
    registry = checks.load_all()
    for check in registry.values():
        for name in check.queries:
            for version in SUPPORTED:
                assert sql.resolve(name, version).exists(), (check.id, name, version)


def test_resolver_picks_highest_suffix_at_or_below(tmp_path, monkeypatch):
    (tmp_path / "x").mkdir()
    for f in ("q.sql", "q.post_130000.sql", "q.post_170000.sql"):
        (tmp_path / "x" / f).write_text(f"-- {f}\n")
    monkeypatch.setattr(sql, "ROOT", tmp_path)
    sql.catalogue.cache_clear()
    try:
        assert sql.resolve("x/q", 120000).name == "q.sql"
        assert sql.resolve("x/q", 160005).name == "q.post_130000.sql"
        assert sql.resolve("x/q", 180001).name == "q.post_170000.sql"
        with pytest.raises(KeyError):
            sql.resolve("x/absent", 180000)
    finally:
        sql.catalogue.cache_clear()


def test_no_sql_file_is_left_unused():
    """Every query name is referenced from Python code (a check's `queries`, or a fetch in the library)."""
    source = "\n".join(p.read_text() for p in LIB.rglob("*.py"))
    unused = [name for name in sql.catalogue() if not re.search(rf"[\"']{re.escape(name)}[\"']", source)]
    assert unused == []


def test_every_sql_file_starts_with_a_header_comment():
    for versions in sql.catalogue().values():
        for path in versions.values():
            assert path.read_text().lstrip().startswith("--"), path
