"""Statements and plans from the server log: a real server with auto_explain loaded for the test's database
(text format in one database, json in another) and log_min_duration_statement writes stderr, csvlog and jsonlog;
a workload whose estimate is 100x off (two correlated columns); opsbook reads the real log back: the statement
with its count and mean, its plan summarised, the misestimate named. Then hostile logs, and the runbook on
PostgreSQL 15 showing the log's plan where the target cannot give one."""
from __future__ import annotations

import json
import time

import psycopg
import pytest

from conftest import PG15_BIN, _server, drop_database, make_database
from opsbook.checks.tuning import judge_log_plans
from opsbook.logs.autoexplain import MAX_NODES, LoggedPlan, LoggedStatement, parse
from opsbook.tuning import logplans
from opsbook.tuning.advisor import Tuning

PREFIX = "%m [%p] %q%u@%d app=%a "
LOGGING = dict(logging_collector="on", log_destination="'stderr,csvlog,jsonlog'", log_directory="'log'",
               log_filename="'postgresql.log'", log_line_prefix=f"'{PREFIX}'", log_min_duration_statement="0")
CORRELATED = "SELECT count(*) FROM public.pairs WHERE a = {v} AND b = {v}"  # a = b always: 1,000 rows, not 10
BY_ID = "SELECT pad FROM public.pairs WHERE id = %s"  # psycopg binds it: `execute <unnamed>: ... $1`
RUNS = 5


def seed(d, fmt: str) -> None:
    d.execute("CREATE TABLE public.pairs (id int PRIMARY KEY, a int, b int, pad text)")
    d.execute("INSERT INTO public.pairs SELECT g, g % 100, g % 100, 'x' FROM generate_series(1, 100000) g")
    d.execute("ANALYZE public.pairs")
    d.execute(f'ALTER DATABASE "{d.name}" SET session_preload_libraries = \'auto_explain\'')
    verbose = "on" if fmt == "json" else "off"  # json: schemas and the queryid (compute_query_id) in the plan
    for k, v in (("log_min_duration", "0"), ("log_analyze", "on"), ("log_buffers", "on"), ("log_format", fmt),
                 ("log_verbose", verbose)):
        d.execute(f'ALTER DATABASE "{d.name}" SET auto_explain.{k} = \'{v}\'')


def workload(d) -> None:
    with psycopg.connect(d.conninfo, autocommit=True, application_name="shop") as c:
        for v in range(RUNS):
            c.execute(CORRELATED.format(v=v + 1)).fetchall()
        for i in range(3):
            c.execute(BY_ID, (i + 1,)).fetchall()
    with psycopg.connect(d.conninfo, autocommit=True, application_name="opsbook") as c:
        c.execute("SELECT count(*) FROM public.pairs WHERE a < 3").fetchall()  # opsbook's own: left out
    with psycopg.connect(d.conninfo, autocommit=True, application_name="shop") as c:
        c.execute("SELECT /* opsbook */ count(*) FROM public.pairs").fetchall()  # marked as opsbook's: left out


def wait_logged(log_dir, marker: str, exts=("log", "csv", "json")) -> None:
    deadline = time.monotonic() + 20
    while not all((log_dir / f"postgresql.{e}").exists() and marker in (log_dir / f"postgresql.{e}").read_text(
            errors="replace") for e in exts):
        assert time.monotonic() < deadline, f"{marker} never reached the logs in {log_dir}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """{format: database name} on one server whose log holds both workloads, and the log folder."""
    server = _server(tmp_path_factory, "tuning-log", **LOGGING)
    names = {}
    try:
        for fmt in ("text", "json"):
            d = make_database(server)
            seed(d, fmt)
            workload(d)
            names[fmt] = d.name
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("DO $$BEGIN RAISE LOG 'opsbook-test-tuning-log-over'; END$$")
        wait_logged(server.data_dir / "log", "opsbook-test-tuning-log-over")
        yield server.data_dir / "log", names
    finally:
        server.stop()


def key_of(v: int = 1) -> str:
    return logplans.normalise(CORRELATED.format(v=v))


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("ext", ["log", "csv", "json"])
def test_the_real_log_gives_count_mean_plan_and_misestimate(logged, fmt, ext):
    log_dir, names = logged
    lp = logplans.read(str(log_dir / f"postgresql.{ext}"), prefix=PREFIX if ext == "log" else None,
                       database=names[fmt])
    assert lp.error is None and not lp.read.unreadable_plans, lp.problem_lines()
    s = lp.statements[key_of()]
    assert s.count == RUNS and s.plans == RUNS  # every run: its duration line and its plan
    n, total = s.executions
    df = lp.frame()
    # shown as its author wrote it, the log's literal values as $n (none of them in the report)
    row = df[df["statement"] == "SELECT count(*) FROM public.pairs WHERE a = $1 AND b = $2"].iloc[0]
    assert row["count"] == RUNS and row["mean_ms"] == pytest.approx(total / RUNS, abs=0.001) and total > 0
    assert s.slowest.fmt == fmt and s.slowest.analyzed
    kinds = [x.kind for x in s.summary.nodes]
    assert kinds[0] == "Aggregate" and "Seq Scan" in kinds
    scan = next(x for x in s.summary.nodes if x.kind == "Seq Scan")
    assert "a = " in scan.conditions["Filter"] and scan.rows < 100  # planned: 1% x 1% of 100,000
    schema = "public" if fmt == "json" else None  # log_verbose names it; else the target's catalogue (below)
    (m,) = [m for m in s.misestimates if m.relation == (schema, "pairs")]
    assert m.actual == 1000 and m.planned < 100 and "Filter" in m.condition
    assert m.node == ("Seq Scan on public.pairs" if schema else "Seq Scan on pairs")
    assert (s.query_id is not None) == (fmt == "json")  # Query Identifier: log_verbose with compute_query_id
    assert lp.for_statement(CORRELATED.replace("{v}", "$1", 1).replace("{v}", "$2"), None) is s  # as pgss shows it
    if s.query_id is not None:
        assert lp.for_statement("a text that matches nothing", s.query_id) is s
    assert "planned" in m.text() and "actual 1,000" in m.text()
    by_id = lp.statements[logplans.normalise(BY_ID.replace("%s", "$1"))]
    assert by_id.count == 3 and by_id.plans == 3  # `execute <unnamed>:` lines and their plans
    assert not [k for k in lp.statements if "a < " in k or "opsbook" in k]  # opsbook's own left out
    assert lp.own_left_out >= 2
    # the schema, once the target's catalogue names the table, and the check's warning
    lp.resolve({("public", "pairs"): 100000.0}, {("public", "pairs"): {"id", "a", "b", "pad"}})
    assert m.relation == ("public", "pairs") and m.table_rows == 100000.0
    assert any(x.relation == ("public", "pairs") for x in s.summary.nodes)
    t = Tuning(None, None, None, log=lp, from_log=lp.frame())
    findings = judge_log_plans(t)
    warn = [f for f in findings if f.severity.value == "warning"]
    assert warn and "Seq Scan on public.pairs" in warn[0].title and "ANALYZE public.pairs" in warn[0].remediation
    assert findings[0].severity.value == "ok" and "with an auto_explain plan" in findings[0].title


def test_a_plan_without_analyze_has_no_misestimate_and_the_json_keeps_its_keys():
    body = json.dumps({"Query Text": "select 1 from t where a = 1", "Query Identifier": 42,
                       "Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Schema": "s", "Alias": "t",
                                "Startup Cost": 0, "Total Cost": 100.5, "Plan Rows": 5, "Plan Width": 4,
                                "Filter": "(a = 1)"}}, indent=2)
    p = parse("duration: 3.250 ms  plan:\n" + body)
    assert isinstance(p, LoggedPlan) and p.query_id == 42 and not p.analyzed and p.problem is None
    assert p.plan["Relation Name"] == "t" and p.plan["Schema"] == "s" and logplans.misestimates(p.plan) == []
    s = parse("duration: 1.5 ms  execute S_1: select $1")
    assert isinstance(s, LoggedStatement) and s.prepared == "S_1" and s.text == "select $1"
    assert parse("duration: 1.5 ms") is None and parse("connection authorized: user=x") is None


HOSTILE = [
    "duration: 1 ms  plan:\n{\"Query Text\": \"select * from t\", \"Plan\": {\"Node Type\": \"Seq Sc",  # cut json
    "duration: 1 ms  plan:\n" + "[" * 200_000 + "]" * 200_000,  # nested past any recursion limit
    "duration: 1 ms  plan:\n{\"Plan\": {\"Total Cost\": \"abc\", \"Plan Rows\": [1], \"Plans\": [1, null, \"x\", "
    "{\"Node Type\": 7, \"Actual Loops\": 1e400, \"Actual Rows\": true}]}}",  # wrong types everywhere
    "duration: 1 ms  plan:\nQuery Text: select 1\nSeq Scan on t  (cost=0.00..1.01 rows=1 width=4) (actual ti",
    "duration: 1 ms  plan:\nQuery Text: select 1\n  ->  Seq Scan on t  (cost=0.00..1.01 rows=1 width=4)",  # no root
    "duration: 1 ms  plan:\n\x00\udcff garbage \t\n\n ->  ->  ->",
    "duration: 1 ms  plan:\n<explain xmlns=\"http://www.postgresql.org/2009/explain\">",
    "duration: 1 ms  plan:\nQuery Text: select 1\nPlan: \n  Node Type: \"Result\"",
    "duration: 99999999999999999999999999 ms  statement: " + "x" * 100_000,
]


@pytest.mark.parametrize("message", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_or_cut_plan_gives_a_partial_result_never_an_exception(message):
    item = parse(message)
    assert isinstance(item, (LoggedPlan, LoggedStatement))
    if isinstance(item, LoggedPlan):
        assert item.plan is not None or item.problem
        logplans.misestimates(item.plan)  # and what was kept is safe to read
        if item.plan is not None:
            from opsbook.tuning.plans import summarise
            summarise(item.plan, {})
    else:
        assert len(item.text) <= 32_000


def test_the_cut_json_keeps_its_query_text_and_says_why():
    item = parse(HOSTILE[0])
    assert item.query == "select * from t" and item.plan is None and "does not parse" in item.problem


def test_a_huge_plan_is_capped():
    kids = "\n".join(f"  ->  Seq Scan on t{i}  (cost=0.00..1.00 rows=1 width=4)" for i in range(MAX_NODES + 50))
    item = parse("duration: 1 ms  plan:\nQuery Text: select 1\nAppend  (cost=0.00..9.00 rows=9 width=4)\n" + kids)
    assert len(item.plan["Plans"]) == MAX_NODES - 1 and "left out" in item.problem
    for depth, parsed in ((300, True), (50_000, False)):
        plan = '{"Node Type": "Result", "Plans": [' * depth + '{"Node Type": "Result"}' + "]}" * depth
        item = parse('duration: 1 ms  plan:\n{"Query Text": "x", "Plan": ' + plan + "}")
        assert (item.plan is not None) == parsed and item.query == "x"  # cut at MAX_DEPTH; too deep: said
        n, p = 0, item.plan
        while p and p.get("Plans"):
            n, p = n + 1, p["Plans"][0]
        assert n <= 101


def test_a_hostile_log_file_is_counted_and_an_unreadable_one_is_a_finding(tmp_path):
    log = tmp_path / "postgresql.log"
    good = "duration: 2.000 ms  statement: SELECT 1 FROM public.t WHERE x = 'a'"
    log.write_bytes(b"2026-01-01 10:00:00.000 UTC [1] LOG:  " + good.encode() + b"\n"
                    + b"2026-01-01 10:00:01.000 UTC [1] LOG:  duration: 1.000 ms  plan:\n\t{\"Query Text\": \"sel\n"
                    + b"\xff\xfe garbage line\n" * 3
                    + b"2026-01-01 10:00:02.000 UTC [1] LOG:  " + good.replace("'a'", "'b'").encode() + b"\n")
    lp = logplans.read(str(log))
    assert lp.error is None
    s = lp.statements["select $1 from public . t where x = $2"]
    assert s.count == 2 and s.plans == 0
    cut = lp.statements["sel"]  # the cut plan: its text, counted, no plan
    assert cut.plans == 1 and cut.slowest is None
    assert any("does not parse" in why for why in lp.read.unreadable_plans)
    assert any("line 4, 3 times" in line for line in lp.problem_lines())
    missing = logplans.read(str(tmp_path / "nowhere" / "*.log"))
    assert missing.error
    t = Tuning(None, None, None, log=missing, from_log=None)
    (f,) = judge_log_plans(t)
    assert f.skipped and "could not be read" in f.title
    (none,) = judge_log_plans(Tuning(None, None, None))
    assert "no server log given" in none.title and "auto_explain.log_min_duration" in none.remediation


def test_a_plan_whose_tabs_became_spaces_still_reads(logged):
    """The stderr reader keeps a continuation line that starts with spaces as it is (a tool along the way turned
    PostgreSQL's tab into spaces): the plan under that margin reads the same."""
    from opsbook.logs import iter_events
    log_dir, names = logged
    message = next(e.message for e in iter_events(log_dir / "postgresql.log", prefix=PREFIX)
                   if e.database == names["text"] and e.message.startswith("duration: ")
                   and "plan:" in e.message and "a = 1 " in e.message)
    head, body = message.split("\n", 1)
    spaced = head + "\n" + "\n".join("        " + line for line in body.split("\n"))
    plan, again = parse(message), parse(spaced)
    assert plan.plan and again.plan == plan.plan and again.query == plan.query and again.problem is None


def test_constants_normalise_as_pg_stat_statements_shows_them():
    assert logplans.normalise("SELECT * FROM t WHERE a = -5 AND b IN (1, 2, 3) AND c = 'x';") == \
        logplans.normalise("select * from t where a = $1 and b in ($2, $3) and c = $4")
    assert logplans.normalise("SELECT /* c */ 1") == "select $1"


# ------------------------------------------------------------------ the runbook on PostgreSQL 15
@pytest.fixture(scope="module")
def pg15_logged(tmp_path_factory):
    if not (PG15_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 binaries not present at /usr/lib/postgresql/15/bin (optional second version)")
    server = _server(tmp_path_factory, "tuning-log-15", bindir=PG15_BIN, **LOGGING)
    yield server
    server.stop()


def test_runbook_on_pg15_shows_the_logs_plan(pg15_logged, tmp_path):
    from opsbook.run.runner import run_runbook
    d = make_database(pg15_logged)
    try:
        d.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        seed(d, "json")
        workload(d)
        d.execute("DO $$BEGIN RAISE LOG 'opsbook-test-tuning-log-15-over'; END$$")
        log_dir = pg15_logged.data_dir / "log"
        wait_logged(log_dir, "opsbook-test-tuning-log-15-over", exts=("csv",))
        result = run_runbook("query-tuning", "test", {"log_path": str(log_dir / "postgresql.csv")},
                             config=d.config(), output_dir=tmp_path / "reports")
        assert result.exit_code == 0, result.sidecar.get("error")
        html = result.html_path.read_text()
        assert "from the log:" in html and "Seq Scan on public.pairs" in html
        import re
        row = next(r for r in re.findall(r'<tr><td class="num">.*?</tr>', html, re.S)  # the statements table's
                   if "WHERE a = $1 AND b = $2" in r)
        assert "from the log:" in row and "no plan (PostgreSQL" not in row, row  # the log's plan in its place
        print("\n" + re.sub(r"<[^>]+>", " | ", row)[:1200])
        found = [f for f in result.sidecar["findings"] if f["check"] == "tuning.log_plans"]
        assert any(f["severity"] == "warning" and "public.pairs" in f["title"] and "actual 1,000" in f["title"]
                   for f in found), found
    finally:
        drop_database(d)


def _until(d, sql: str, deadline_s: float = 20) -> None:
    end = time.monotonic() + deadline_s
    while not d.execute(sql)[0][0]:
        assert time.monotonic() < end, f"not true within {deadline_s} s: {sql}"
        time.sleep(0.2)


def test_without_pg_stat_statements_the_logs_statements_are_tuned(pg15_logged, tmp_path):
    """A database without pg_stat_statements: the statements the log holds are planned on the shadow like any, and
    the index the slow one needs is proposed, its calls said to be the logged executions only."""
    from opsbook.run.runner import run_runbook
    d = make_database(pg15_logged)
    try:
        d.execute("CREATE TABLE public.visits (id bigint PRIMARY KEY, account int NOT NULL, pad text)")
        d.execute("INSERT INTO public.visits SELECT g, g % 5000, 'x' FROM generate_series(1, 200000) g")
        _until(d, "SELECT n_tup_ins >= 200000 FROM pg_stat_user_tables WHERE relname = 'visits'")
        d.execute("SELECT pg_stat_reset_single_table_counters('public.visits'::regclass)")  # the load was long ago
        _until(d, "SELECT n_tup_ins = 0 FROM pg_stat_user_tables WHERE relname = 'visits'")
        d.execute("ANALYZE public.visits")
        with psycopg.connect(d.conninfo, autocommit=True, application_name="shop") as c:
            for i in range(8):
                c.execute(f"SELECT pad FROM public.visits WHERE account = {i}").fetchall()
            c.execute("DO $$BEGIN RAISE LOG 'opsbook-test-log-only-over'; END$$")
        log_dir = pg15_logged.data_dir / "log"
        wait_logged(log_dir, "opsbook-test-log-only-over", exts=("csv",))
        assert not d.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")[0][0]
        result = run_runbook("query-tuning", "test", {"log_path": str(log_dir / "postgresql.csv")},
                             config=d.config(), output_dir=tmp_path / "reports")
        assert result.exit_code == 0, result.sidecar.get("error")
        proposals = [f for f in result.sidecar["findings"] if f["check"] == "tuning.indexes"
                     and f["severity"] == "warning"]
        assert any('ON "public"."visits" ("account")' in f["remediation"] for f in proposals), \
            [f["title"] for f in result.sidecar["findings"]]
        html = result.html_path.read_text()
        assert "SELECT pad FROM public.visits WHERE account = $1" in html
        assert "from the server log (its logged executions only) · 8 calls" in html
        assert "pg_stat_statements is not installed" in html  # said, not hidden
    finally:
        drop_database(d)
