"""The one formatting layer: numbers in their unit and precision, tables that say something, metrics shown."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from opsbook.core import display
from opsbook.core.display import human_pct, human_seconds, human_value, metrics_html, plot_text, table_html

BIGINT_MAX = 9223372036854775807


def cells(markup: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", markup)


@pytest.mark.parametrize("value, shown", [(99.98, "99.98%"), (100.0, "100.0%"), (99.999, "99.999%"),
                                          (0.04, "0.04%"), (0.0, "0%"), (-0.0, "0%"), (50, "50.0%"),
                                          (12.345, "12.3%")])
def test_percentages_keep_the_digits_that_separate_them_from_100(value, shown):
    assert human_pct(value) == shown


@pytest.mark.parametrize("value, shown", [(-0.00001, "0 s"), (-0.04, "0 s"), (0.04, "0 s"), (5, "5.0 s"),
                                          (90, "1.5 min"), (7200, "2.0 h"), (3 * 86400, "3.0 d")])
def test_durations_in_s_min_h_d_and_never_minus_zero(value, shown):
    assert human_seconds(value) == shown


def test_counts_are_integers_and_bigint_stays_exact():
    assert human_value("peak_connections", 2.0) == "2"
    assert human_value("users_total", 100000.0) == "100,000"
    assert human_value("usable_max", BIGINT_MAX) == "9,223,372,036,854,775,807"
    assert human_value("calls", 1234567) == "1,234,567"
    assert human_value("pid", 4711) == "4711"  # an id, not a quantity


def test_units_by_column_name():
    assert human_value("size_bytes", 8160437862.4) == "7.6 GB"
    assert human_value("mean_exec_ms", 12.34) == "12.3 ms"
    assert human_value("total_exec_ms", 24_300) == "24.3 s"
    assert human_value("amount_usd", 25) == "25.00 USD"
    assert human_value("delta_usd", -100.0) == "-100.00 USD"
    assert human_value("days_to_full", 473.6) == "474 days"
    assert human_value("age_h", 9.1) == "9.1 h"
    assert human_value("anything", None) == "" and human_value("anything", float("nan")) == ""
    assert human_value("flag", True) == "yes"


def test_a_unit_column_formats_the_value_beside_it_and_is_not_repeated():
    df = pd.DataFrame({"limit": ["disk", "auth"], "limit_value": [8160437862.4, 100000.0],
                       "unit": ["bytes", "users"], "pct_used": [99.98, 1.5]})
    markup = table_html(df)
    assert cells(markup) == ["disk", "7.6 GB", "99.98%", "auth", "100,000 users", "1.5%"]
    assert "<th>unit</th>" not in markup


def test_an_empty_column_is_named_once_instead_of_shown_blank():
    df = pd.DataFrame({"sequence_name": ["a", "b"], "days_left": [None, None]})
    markup = table_html(df)
    assert "<th>days_left</th>" not in markup and "No value in any row for days_left." in markup


def test_no_rows_is_one_sentence_not_a_placeholder():
    markup = table_html(pd.DataFrame(columns=["a"]))
    assert "(no rows)" not in markup and markup.count("<p") == 1 and display.EMPTY in markup
    assert "nothing was run" in table_html(None, empty="nothing was run")


def test_no_float_artefacts_in_any_cell():
    df = pd.DataFrame({"n_dead_tup": [131084.0], "rows": [2.0], "ratio": [0.25], "tiny": [0.0001]})
    for cell in cells(table_html(df)):
        assert not re.search(r"\.00\b|nan|None|e[+-]\d", cell), cell


def test_metrics_are_shown_in_their_units_and_an_empty_run_says_so():
    markup = metrics_html({"days_until_disk_full": 548.8, "database_size_bytes": 711374527.0,
                           "connections_peak": 2.0, "cache_hit_pct": 99.98, "monthly_cost_usd": 25.0,
                           "forecast_model": "quadratic", "days_until_full_read_only": None})
    assert cells(markup) == ["days_until_disk_full", "549 days", "database_size_bytes", "678.4 MB",
                             "connections_peak", "2", "cache_hit_pct", "99.98%", "monthly_cost_usd", "25.00 USD",
                             "forecast_model", "quadratic", "days_until_full_read_only",
                             "not within the forecast"]
    assert "<table" not in metrics_html({}) and "No numbers" in metrics_html({})


def test_plot_labels_are_escaped_once_for_plotly():
    assert plot_text('a<b> & "c" \'d\'') == "a&lt;b&gt; &amp; \"c\" 'd'"


def test_the_slow_statement_list_leaves_out_opsbooks_own_work():
    """pg_stat_statements keeps a statement from its first keyword, constants and parameters as $n: opsbook's
    own catalog queries are recognised by the start of their SQL file, pg_dump by its COPY ... TO stdout."""
    import re

    from opsbook.database import sql as sqlfiles
    from opsbook.checks.queries import opsbook_own

    def as_pgss_shows(path) -> str:
        body = re.sub(r"--[^\n]*", " ", path.read_text())
        n = iter(range(1, 1000))
        return re.sub(r"'[^']*'|(?<!:):[a-z_]+|\b\d+\b", lambda m: f"${next(n)}", body)

    files = [p for versions in sqlfiles.catalogue().values() for p in versions.values()]
    buckets = next(p for p in files if p.name == "buckets.sql" and p.parent.name == "storage")
    mau = next(p for p in files if p.name == "mau.sql")
    df = pd.DataFrame({"query": [as_pgss_shows(buckets), as_pgss_shows(mau),
                                 "COPY public.messages (id, conversation_id, content) TO stdout",
                                 "SELECT id, workflow_id FROM automation_jobs WHERE status = $1 ORDER BY id",
                                 "COPY public.messages (id) FROM stdin", None]})
    assert opsbook_own(df).tolist() == [True, True, True, False, False, False]
    # PostgreSQL 13-17 keep a single statement's leading comments in pg_stat_statements (18 cuts them): the same
    # file with its comments is still opsbook's own
    with_comments = re.sub(r"'[^']*'|(?<!:):[a-z_]+|\b\d+\b", "$1", buckets.read_text())
    assert with_comments.lstrip().startswith("--")
    assert opsbook_own(pd.DataFrame({"query": [with_comments, "/* app */ " + as_pgss_shows(mau)]})).tolist() == \
        [True, True]
    # opsbook's run-time row counts carry a marker where it writes it; an application writing the marker elsewhere
    # does not hide its statement
    assert opsbook_own(pd.DataFrame({"query": ['SELECT /* opsbook */ count(*) FROM "public"."leads"',
                                              "SELECT * FROM leads /* opsbook */ WHERE id = $1"]})).tolist() == \
        [True, False]
