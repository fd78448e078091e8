"""Why no index helps a statement, from a real plan's shape (JSON as EXPLAIN gives it)."""
from __future__ import annotations

from opsbook.tuning.plans import summarise
from opsbook.tuning.reasons import why_no_index

T = ("public", "t")
COLUMNS = {T: {"id", "a", "pad"}}


def _scan(kind: str, **kw) -> dict:
    return {"Node Type": kind, "Schema": "public", "Relation Name": "t", "Alias": "t", "Total Cost": 8.3,
            "Plan Rows": 1, **kw}


def test_a_statement_already_served_by_an_index_says_which():
    s = summarise(_scan("Index Scan", **{"Index Name": "t_pkey", "Index Cond": "(t.id = $1)"}), COLUMNS)
    assert why_no_index(s, {T: 2e6}, set(), 10) == \
        "it already reads through an index (t_pkey); no candidate made its plan 10% cheaper"


def test_a_large_sequential_scan_is_not_said_to_be_served():
    plan = {"Node Type": "Nested Loop", "Total Cost": 40000.0, "Plan Rows": 10, "Plans": [
        _scan("Index Scan", **{"Index Name": "t_pkey", "Total Cost": 8.3}),
        _scan("Seq Scan", **{"Total Cost": 39000.0, "Filter": "(t.pad ~~ $2)"})]}
    assert why_no_index(summarise(plan, COLUMNS), {T: 2e6}, set(), 10) == \
        "no candidate index made its plan 10% cheaper"
