"""The shape of lib/opsbook, read from its own imports (tests/structure.py): no import circles, a short top level,
and every package saying in one line what it holds."""
from __future__ import annotations

import ast

import structure


def test_no_module_imports_itself_back_through_others():
    found = structure.circles(structure.imports())
    assert found == [], "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_packages_stand_in_layers_from_core_up_to_the_command_line():
    packages = structure.top_level(structure.imports())
    assert structure.circles(packages) == [], "packages importing each other: " + str(structure.circles(packages))
    floors = structure.layers(packages)
    assert floors[0] == ["opsbook.core"] and floors[-1] == ["opsbook.cli"], floors
    below = {p for floor in floors[: [i for i, f in enumerate(floors) if "opsbook.checks" in f][0]] for p in floor}
    assert {"opsbook.core", "opsbook.config", "opsbook.database"} <= below, "checks stand on the database layer"


def test_the_circle_finder_finds_a_planted_circle(tmp_path):
    package = tmp_path / "opsbook"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Root."""\n')
    (package / "inner" / "__init__.py").write_text('"""Inner."""\n')
    (package / "a.py").write_text("from .inner import b\n")
    (package / "inner" / "b.py").write_text("def f():\n    from ..c import x\n")  # inside a function counts too
    (package / "c.py").write_text("from . import a\nx = 1\n")
    (package / "d.py").write_text("from .c import x\n")
    assert structure.circles(structure.imports(tmp_path)) == [["opsbook.a", "opsbook.c", "opsbook.inner.b"]]


def test_the_top_level_is_the_entry_and_a_few_packages_each_with_a_docstring():
    top = structure.LIB / "opsbook"
    flat = sorted(p.name for p in top.glob("*.py"))
    packages = sorted(p for p in top.iterdir() if (p / "__init__.py").is_file())
    assert len(flat) <= 3, flat
    assert len(packages) <= 16, [p.name for p in packages]
    for package in packages:
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc and len(doc.splitlines()) >= 1, f"{package.name}/__init__.py has no docstring"
    # (a folder left holding only __pycache__, as an update of an older checkout leaves one, is not code)
    stray = [p.name for p in top.iterdir() if p.is_dir() and p.name != "__pycache__" and p not in packages
             and any("__pycache__" not in f.parts for f in p.rglob("*") if f.is_file())]
    assert stray == [], f"folders at the top that are not packages: {stray}"
