"""The parameters cell: parsing with ast, strict coercion of -p values, and one-line errors."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from opsbook.config import params
from opsbook.core.errors import ParameterError, UsageError
from opsbook.config.params import Param

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"

CELL = '''\
target: str = "demo"  # target name from opsbook.toml
window_minutes: int = 60  # look-back window, in minutes
ratio: float = 0.5
verbose: bool = False  # say more
label: str | None = None  # optional label
limit: Optional[int] = None  # old spelling of int | None
pids: list[int] = []  # backend pids
names: list[str] = ["a", "b=c"]  # a default with '=' inside (papermill #864)
options: dict = {
    "x": 1,
}  # help on the last line of a multi-line default
items: list = [1, "two"]
untyped = 3  # type inferred from the default
import os  # not a parameter
'''


def spec() -> list[Param]:
    return params.parse(CELL)


def test_parse_reads_names_types_defaults_and_help_in_order():
    got = {p.name: (p.type, p.default, p.help) for p in spec()}
    assert list(got) == ["target", "window_minutes", "ratio", "verbose", "label", "limit", "pids", "names", "options",
                         "items", "untyped"]
    assert got["target"] == ("str", "demo", "target name from opsbook.toml")
    assert got["ratio"] == ("float", 0.5, "")
    assert got["label"] == ("str | None", None, "optional label")
    assert got["limit"][0] == "int | None"
    assert got["names"] == ("list[str]", ["a", "b=c"], "a default with '=' inside (papermill #864)")
    assert got["options"] == ("dict", {"x": 1}, "help on the last line of a multi-line default")
    assert got["untyped"] == ("int", 3, "type inferred from the default")


def test_describe_the_real_runbook_and_a_fixture():
    triage = {p.name: p for p in params.describe(ROOT / "runbooks" / "incident-triage.ipynb")}
    assert triage["target"].type == "str" and triage["thresholds"].type == "dict"
    chart = params.describe(FIXTURES / "chart.ipynb")
    assert [p.name for p in chart][:3] == ["target", "thresholds", "window_minutes"]


@pytest.mark.parametrize("source, message", [
    ("x: tuple = (1,)", "has type 'tuple'"),
    ("x: int = len('a')", "must be a literal"),
    ("x: int = (", "not valid Python"),
])
def test_bad_parameters_cells_are_reported(source, message):
    with pytest.raises(ParameterError, match=message):
        params.parse(source, where="broken")


@pytest.mark.parametrize("name, text, expected", [
    ("window_minutes", "15", 15),
    ("window_minutes", " 1_000 ", 1000),
    ("ratio", "1", 1.0),
    ("ratio", "2.5e-1", 0.25),
    ("verbose", "yes", True),
    ("verbose", "False", False),
    ("verbose", "0", False),
    ("label", "none", None),
    ("label", "NULL", None),
    ("label", "primary db", "primary db"),
    ("limit", "null", None),
    ("limit", "7", 7),
    ("pids", "1,2, 3", [1, 2, 3]),
    ("pids", "[4, 5]", [4, 5]),
    ("pids", "", []),
    ("names", "a,b", ["a", "b"]),
    ("names", '["x,y"]', ["x,y"]),
    ("options", '{"a": {"b": [1]}}', {"a": {"b": [1]}}),
    ("items", "[1, null]", [1, None]),
    ("target", "", ""),
])
def test_coerce_converts_strings_by_declared_type(name, text, expected):
    value = params.coerce(spec(), {name: text})[name]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("name, text", [
    ("window_minutes", "3.5"), ("window_minutes", ""), ("window_minutes", "ten"), ("ratio", "nan"),
    ("ratio", "inf"), ("verbose", "maybe"), ("pids", "1,x"), ("pids", '["1"]'), ("options", "[1]"),
    ("options", "{bad json"), ("items", '{"a": 1}'), ("limit", "none-ish"),
])
def test_coerce_rejects_wrong_types_with_one_line_naming_everything(name, text):
    with pytest.raises(ParameterError) as e:
        params.coerce(spec(), {name: text})
    message = str(e.value)
    declared = {p.name: p.type for p in spec()}[name]
    assert "\n" not in message
    assert f"parameter {name!r} expects {declared}" in message
    assert "known: target, window_minutes, ratio" in message
    assert isinstance(e.value, UsageError) and e.value.exit_code == 2


@pytest.mark.parametrize("name, value, ok", [
    ("window_minutes", 5, True), ("window_minutes", True, False), ("window_minutes", 5.0, False),
    ("ratio", 3, True), ("verbose", 1, False), ("label", None, True), ("pids", [1, 2], True),
    ("pids", [1, "2"], False), ("names", ["a"], True), ("options", {}, True), ("options", [], False),
])
def test_coerce_checks_python_values_passed_in_process(name, value, ok):
    if ok:
        assert params.coerce(spec(), {name: value})[name] == value
    else:
        with pytest.raises(ParameterError, match=f"expects"):
            params.coerce(spec(), {name: value})


def test_unknown_parameter_names_the_known_ones():
    with pytest.raises(ParameterError, match=r"^unknown parameter 'windw_minutes'; known: target, window_minutes"):
        params.coerce(spec(), {"windw_minutes": "5"})


def test_long_values_are_shortened_in_messages():
    with pytest.raises(ParameterError) as e:
        params.coerce(spec(), {"window_minutes": "9" * 500 + "x"})
    assert len(str(e.value)) < 300


def test_parse_assignments_keeps_equals_signs_in_values():
    assert params.parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ParameterError, match="NAME=VALUE"):
        params.parse_assignments(["novalue"])


def test_the_config_a_kernel_reads_round_trips_through_toml(tmp_path):
    """A configuration given as a dict (no file) reaches the kernel as a TOML file that reads back the same."""
    from opsbook.config.file import from_dict
    from opsbook.run.runner import _config_file

    raw = {"targets": {"test": {"dsn": "host=/tmp/x dbname='quoted \\' é'", "plan": "pro",
                                "description": 'a "quoted" \\ end\n\x7f é',
                                "thresholds": {"activity.long_running": {"warning": 60, "critical": 1.5}}}},
           "history": {"url": "sqlite:////tmp/h.sqlite"}}
    config = from_dict(raw)
    written = _config_file(config, tmp_path)
    assert tomllib.loads(written.read_text()) == config.portable_raw()
    assert tomllib.loads(written.read_text())["targets"]["test"]["dsn"] == raw["targets"]["test"]["dsn"]


def test_a_broken_notebook_file_is_one_clear_error(tmp_path):
    from opsbook.core.errors import OpsbookError

    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    with pytest.raises(OpsbookError, match="broken.ipynb is not a readable notebook: JSONDecodeError"):
        params.describe(tmp_path / "broken.ipynb")
