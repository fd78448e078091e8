"""The statements table of query-tuning: the text first, escaped; the plan's nodes one per line, sequential scans
in bold; a statement not planned says why once."""
from __future__ import annotations

import pandas as pd
from opsbook.tuning.render import statements_html


def _row(**kw):
    base = {"queryid": "42", "calls": 3, "total_exec_ms": 1500.0, "mean_exec_ms": 500.0, "pct_total_time": 12.5,
            "rows": 7, "shared_blks_read": 1000, "query": "SELECT 1", "status": "", "plan": "", "target_plan": "",
            "shadow_cost": None}
    return {**base, **kw}


def test_planned_and_refused_statements():
    df = pd.DataFrame([
        _row(query="SELECT * FROM t WHERE name = '<script>alert(1)</script>'", shadow_cost=26197.0,
             plan="Seq Scan on public.t (cost 25,195 of 26,197, 25 rows) Filter: (t.name = $1)\nGather (cost 1,000)",
             target_plan="cost 26,197: Seq Scan on public.t"),
        _row(queryid="43", status="not planned: it reads auth.users, a table of the platform's schema auth"),
    ])
    html = statements_html(df)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Seq Scan on public.t (cost 25,195 of 26,197, 25 rows) Filter: (t.name = $1)</b>\nGather" in html
    assert "on the shadow: cost 26,197" in html and "cost 26,197: Seq Scan on public.t" in html
    assert "3 calls · total 1.5 s (12.5% of all) · mean 500.0 ms · 7 rows · 1,000 blocks read from disk" in html
    assert html.count("not planned") == 1 and "<b>not planned</b>: it reads auth.users" in html


def test_long_lists_and_texts_are_cut_and_said():
    df = pd.DataFrame([_row(queryid=str(i), query="SELECT " + "x, " * 400 + "1") for i in range(30)])
    html = statements_html(df, max_rows=25)
    assert html.count("<tr><td") == 25 and "5 more in the run's notebook" in html and "…" in html
    assert statements_html(pd.DataFrame()).startswith("<p>")
