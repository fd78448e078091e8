"""Incident checks: judges on hand-made rows, then data functions against faults made for real on real servers."""
from __future__ import annotations

import socket

import pandas as pd
import psycopg
import pytest

from faults import Faults, advisory_wait, alive, blocking_chain, idle_in_transaction, long_running, slow_statements
from opsbook.incident import remediate, triage
from opsbook.checks.activity import judge_idle_in_transaction, judge_long_running
from opsbook.checks.app_freshness import judge_freshness, newest_rows
from opsbook.checks.cache import judge_hit_ratio
from opsbook.checks.connections import judge_idle, judge_saturation
from opsbook.checks.locks import build_tree, judge_blocking, judge_deadlocks
from opsbook.checks.queries import judge_slow, layout_version
from opsbook.checks.registry import CheckContext
from opsbook.checks.replication import judge_lag, judge_slots
from opsbook.checks.temp_files import judge_temp_files
from opsbook.checks.wraparound import judge_xid_age
from opsbook.config.file import from_dict
from opsbook.run.context import Runbook
from opsbook.core.findings import Finding
from opsbook.core.severity import incident_priority

LOWERED = {"activity.long_running": {"warning": 1, "critical": 600},
           "activity.idle_in_transaction": {"warning": 1, "critical": 600}}


def sev(findings, check=None):
    return [f.severity.value for f in findings if check is None or f.check == check]


# ---------------------------------------------------------------------------------------------- judges
def _conns(used, max_connections=20, reserved=3):
    df = pd.DataFrame({"state": ["active", "idle"], "role": ["app", "app"], "application_name": ["web", "web"],
                       "client_addr": ["10.0.0.1", "10.0.0.1"], "connections": [1, used - 1],
                       "longest_in_state_s": [1.0, 2.0]})
    df.attrs.update(max_connections=max_connections, reserved_connections=reserved, used_connections=used)
    return df


@pytest.mark.parametrize("used,expected", [(13, "ok"), (14, "warning"), (16, "warning"), (17, "critical")])
def test_saturation_grades_against_usable_slots(used, expected):
    [f] = judge_saturation(_conns(used))  # usable = 20 - 3 = 17: 14 is 82%, 16 is 94%, 17 is 100%
    assert f.severity.value == expected and f.check == "connections.saturation"


def test_idle_sessions_grade_by_share_of_the_budget():
    df = pd.DataFrame({"pid": [1, 2, 3], "role": "app", "application_name": "web", "client_addr": "x",
                       "idle_s": [7200.0, 4000.0, 10.0], "last_query": ""})
    df.attrs.update(max_connections=100, reserved_connections=3, used_connections=10)
    [f] = judge_idle(df)
    assert (f.severity.value, f.value, f.objects) == ("info", 2, ["pid 1", "pid 2"])
    assert "pg_terminate_backend" in f.remediation and "1, 2" in f.remediation
    assert sev(judge_idle(df, warning=2)) == ["warning"]
    assert sev(judge_idle(df, idle_s=9000)) == ["ok"]


def _active(**over):
    row = {"pid": 7, "role": "app", "application_name": "web", "client_addr": None, "datname": "d",
           "state": "active", "wait_event_type": None, "wait_event": None, "running_s": 400.0, "xact_age_s": 400.0,
           "hidden": False, "query": "SELECT 1"}
    return {**row, **over}


def test_long_running_leaves_lock_waiters_to_locks_and_says_what_is_hidden():
    df = pd.DataFrame([_active(), _active(pid=8, wait_event_type="Lock", wait_event="relation"),
                       _active(pid=9, running_s=2000.0),
                       _active(pid=10, state="hidden", hidden=True, running_s=None, query="<insufficient privilege>")])
    fs = judge_long_running(df)
    assert [(f.severity.value, f.objects) for f in fs] == [("warning", ["pid 7", "web"]),
                                                           ("critical", ["pid 9", "web"]), ("info", [])]
    assert "1 more statements this old are waiting on locks" in fs[1].detail
    assert fs[2].skipped and "pg_read_all_stats" in fs[2].remediation
    assert "pg_cancel_backend(7)" in fs[0].remediation


def test_idle_in_transaction_is_critical_when_it_blocks():
    base = {"role": "app", "application_name": "web", "client_addr": None, "datname": "d",
            "state": "idle in transaction", "xact_age_s": 900.0, "locks_held": 2, "horizon_age_xids": 12,
            "holds_oldest_horizon": True, "last_query": "UPDATE t"}
    df = pd.DataFrame([{**base, "pid": 1, "idle_s": 400.0, "sessions_blocked": 0},
                       {**base, "pid": 2, "idle_s": 400.0, "sessions_blocked": 3},
                       {**base, "pid": 3, "idle_s": 10.0, "sessions_blocked": 9}])
    fs = judge_idle_in_transaction(df)
    assert [(f.severity.value, f.objects[0]) for f in fs] == [("warning", "pid 1"), ("critical", "pid 2")]
    assert "oldest on the server" in fs[0].detail and "pg_terminate_backend(2)" in fs[1].remediation


def _lock_rows(rows):
    cols = ["pid", "blocked_by", "state", "role", "application_name", "client_addr", "datname", "lock_type",
            "lock_mode", "lock_target", "relation", "wait_s", "xact_age_s", "state_s", "query"]
    out = []
    for pid, blocked_by, state, lock_type, wait_s in rows:
        out.append({"pid": pid, "blocked_by": blocked_by, "state": state, "role": "app", "application_name": "web",
                    "client_addr": None, "datname": "d", "lock_type": lock_type, "lock_mode": "ShareLock",
                    "lock_target": None if lock_type is None else f"{lock_type} x",
                    "relation": "public.t" if lock_type in ("relation", "tuple") else None, "wait_s": wait_s,
                    "xact_age_s": 100.0 - pid, "state_s": 50.0, "query": f"q{pid}"})
    return pd.DataFrame(out, columns=cols)


def test_blocking_tree_is_built_from_blocking_pids_with_depth_roots_and_cycles():
    df = _lock_rows([(10, [], "idle in transaction", None, None),  # root of a chain
                     (11, [10], "active", "transactionid", 30.0),
                     (12, [11], "active", "tuple", 20.0),
                     (13, [12, 10], "active", "relation", 10.0),  # two blockers: placed at its shortest depth
                     (20, [21], "active", "advisory", 5.0),  # a cycle nobody broke yet: rooted at oldest xact
                     (21, [20], "active", "advisory", 6.0),
                     (30, [0], "active", "relation", 3.0),  # a prepared transaction holds the lock
                     (0, [], "prepared transaction", None, None)])
    tree = build_tree(df)
    placed = {r.pid: (r.root_pid, None if pd.isna(r.parent_pid) else r.parent_pid, r.depth) for r in tree.itertuples()}
    assert placed[10] == (10, None, 0) and placed[11] == (10, 10, 1) and placed[12] == (10, 11, 2)
    assert placed[13] == (10, 10, 1)
    assert placed[20] == (20, None, 0) and placed[21] == (20, 20, 1)  # 20 has the older transaction
    assert placed[30] == (0, 0, 1)
    assert list(tree["pid"])[:4] == [10, 11, 12, 13] or list(tree["pid"])[:4] == [10, 13, 11, 12]
    assert tree.set_index("pid").loc[10, "blocked_count"] == 3
    fs = judge_blocking(tree)
    by_root = {f.objects[0]: f for f in fs}
    assert by_root["pid 10"].severity.value == "warning" and by_root["pid 10"].value == 3
    assert by_root["pid 10"].objects == ["pid 10", "public.t"] and by_root["pid 20"].objects == ["pid 20", "advisory x"]
    assert "pg_terminate_backend(10)" in by_root["pid 10"].remediation
    assert "ROLLBACK PREPARED" in by_root["pid 0"].remediation
    assert judge_blocking(tree, critical=3)[0].severity.value == "critical"
    assert judge_blocking(tree, critical_wait_s=25)[0].severity.value == "critical"
    assert sev(judge_blocking(tree, min_wait_s=60)) == ["ok"]
    assert sev(judge_blocking(build_tree(_lock_rows([])))) == ["ok"]


def test_deadlocks_temp_files_and_wraparound_grade_their_counters():
    dl = pd.DataFrame({"datname": ["app"], "deadlocks": [3], "stats_reset": [None]})
    assert sev(judge_deadlocks(dl)) == ["warning"] and "never reset" in judge_deadlocks(dl)[0].title
    assert sev(judge_deadlocks(dl.assign(deadlocks=0))) == ["ok"]
    tf = pd.DataFrame({"datname": ["app"], "temp_files": [4], "temp_bytes": [2 * 1024 ** 3], "stats_reset": [None],
                       "work_mem_bytes": [4 * 1024 ** 2], "log_temp_files": ["-1"]})
    assert sev(judge_temp_files(tf)) == ["warning"] and sev(judge_temp_files(tf, warning=3 * 1024 ** 3)) == ["ok"]
    xa = pd.DataFrame({"datname": ["a", "b"], "xid_age": [1_200_000_000, 300], "mxid_age": [0, 1_700_000_000],
                       "pct_xid_used": [55.9, 0.0], "pct_mxid_used": [0.0, 79.2], "autovacuum_freeze_max_age": 2e8})
    fs = judge_xid_age(xa)
    assert [(f.objects[0], f.severity.value) for f in fs] == [("a", "warning"), ("b", "critical")]
    assert "multixact" in fs[1].title


@pytest.mark.parametrize("ext,version", [("1.7", 0), ("1.8", 130000), ("1.10", 130000), ("1.11", 170000),
                                         ("1.12", 170000)])
def test_pg_stat_statements_columns_follow_the_extension_version(ext, version):
    assert layout_version(ext) == version


def test_slow_statements_need_both_time_and_calls():
    def row(qid, mean, calls, pct, hidden=False):
        return {"queryid": qid, "calls": calls, "total_exec_ms": mean * calls, "mean_exec_ms": mean,
                "max_exec_ms": mean * 2, "pct_total_time": pct, "rows": 1, "shared_blks_hit": 1,
                "shared_blks_read": 1, "temp_blks_written": 0, "io_read_ms": 0.0, "hidden": hidden,
                "query": "<insufficient privilege>" if hidden else f"SELECT {qid}"}
    df = pd.DataFrame([row("1", 150.0, 500, 20.0), row("2", 5000.0, 3, 30.0), row("3", 1500.0, 200, 10.0),
                       row("4", 2.0, 90_000, 40.0), row(None, 1.0, 1, 0.0, hidden=True)])
    fs = judge_slow(df)
    assert [(f.severity.value, f.objects) for f in fs] == [
        ("critical", ["queryid 3"]), ("warning", ["queryid 1"]), ("info", ["queryid 4"]), ("info", [])]
    assert fs[-1].skipped


def test_cache_replication_and_freshness_judges():
    hr = pd.DataFrame({"relation_kind": ["tables", "indexes"], "blks_hit": [96_000, 50], "blks_read": [4_000, 50],
                       "pct_hit": [96.0, 50.0]})
    assert sev(judge_hit_ratio(hr)) == ["warning", "ok"]  # indexes: too little traffic to judge
    assert sev(judge_hit_ratio(hr, critical=97)) == ["critical", "ok"]
    slots = pd.DataFrame({"slot_name": ["a", "b", "c"], "slot_type": "physical", "plugin": "", "database": "",
                          "active": [True, False, True], "active_pid": None, "wal_status": ["reserved", "extended",
                                                                                            "lost"],
                          "safe_wal_size_bytes": None, "retained_wal_bytes": [1e6, 1e6, 1e6],
                          "xmin_age_xids": None, "inactive_s": [None, 3600.0, None]})
    assert [(f.objects, f.severity.value) for f in judge_slots(slots)] == [(["b"], "warning"), (["c"], "critical")]
    lag = pd.DataFrame({"standby": ["s1", "s2", "s3"], "client_addr": None, "state": ["streaming", "streaming", None],
                        "sync_state": "async", "replay_lag_bytes": [100.0, 2e9, None], "replay_lag_s": [10.0, None, None],
                        "is_this_server": False})
    fs = judge_lag(lag)
    assert [(f.severity.value, f.value, f.threshold) for f in fs] == [
        ("warning", 10.0, 5), ("critical", 2e9, 1024 ** 3), ("info", None, None)]
    assert fs[2].skipped and "pg_read_all_stats" in fs[2].skipped
    assert sev(judge_lag(lag.iloc[0:0])) == ["ok"]
    fr = pd.DataFrame({"table_name": ["public.a", "public.b", "public.c", "public.d", "public.e"],
                       "column_name": "ts", "max_age_hours": [4, None, 1, 4, 4],
                       "newest": ["x", "x", "x", None, None], "age_h": [5.0, 3.0, 3.5, None, None],
                       "status": ["ok", "ok", "ok", "no rows", "column not found"]})
    assert sev(judge_freshness(fr)) == ["warning", "ok", "critical", "warning", "info"]
    assert sev(judge_freshness(fr.iloc[0:0])) == ["info"]


def test_incident_priority_and_the_verdict():
    def f(check, s, **kw):
        return Finding(check, s, f"{check} {s}", **kw)
    assert incident_priority([f("queries.slow", "ok")]).label == "P3"
    assert incident_priority([f("queries.slow", "warning")]).label == "P2"
    assert incident_priority([f("locks.blocking", "critical"), f("queries.slow", "warning")]).label == "P1"
    assert incident_priority([f("connections.saturation", "critical")]).label == "P0"
    down = [Finding("connectivity.unreachable", "critical", "cannot reach target t: nothing is listening",
                    value="refused", remediation="x")]
    actions = triage.next_actions(down)
    assert len(actions) == 3 and "nothing is listening" in actions[0][1] and "status.supabase.com" in actions[1][1]
    evil = Finding("locks.blocking", "critical", "pid 1 <script>alert(1)</script>", objects=["pid 1"],
                   remediation="SELECT pg_terminate_backend(1);  -- why")
    html = triage.verdict_html([evil, f("activity.idle_in_transaction", "critical", objects=["pid 1"],
                                         remediation="SELECT pg_terminate_backend(1);  -- again")])
    assert "<script>" not in html and "&lt;script&gt;" in html and "P1 High" in html and "within 2 hours" in html
    assert html.count("pg_terminate_backend(1)") == 1  # one action per call, one line per pid
    # a live blocker's action comes before tuning advice of a higher severity; an outage before both
    cache = f("cache.hit_ratio", "critical", remediation="Raise shared_buffers. More below.")
    blocker = f("locks.blocking", "warning", objects=["pid 9"], remediation="SELECT pg_terminate_backend(9);  -- x")
    assert [what for _, what in triage.next_actions([cache, blocker])][:2] == \
        ["SELECT pg_terminate_backend(9);", "Raise shared_buffers"]
    full = f("connections.saturation", "critical", remediation="Free connection slots now. Then more.")
    assert triage.next_actions([cache, blocker, full])[0][1] == "Free connection slots now"
    calm = triage.verdict_html([f("queries.slow", "ok")])
    assert "P3 Low" in calm and "the database is not what is hurting" in calm


# ---------------------------------------------------------------------------------------------- real faults
def _runbook(db, **kw) -> Runbook:
    rb = Runbook("incident-triage", "test", config=kw.pop("config", None) or db.config(), **kw)
    assert rb.connect() is not None
    return rb


def test_lock_faults_make_the_exact_tree(any_db):
    with Faults(any_db.conninfo) as f:
        chain, adv = blocking_chain(f), advisory_wait(f)
        tx, sleeper = idle_in_transaction(f), long_running(f)
        rb = _runbook(any_db, thresholds={**LOWERED, "locks.blocking": {"min_wait_s": 0}})
        f.wait_for("SELECT now() - query_start > interval '1 second' FROM pg_stat_activity WHERE pid = %s",
                   (sleeper,))
        rb.run(["locks.blocking", "activity.idle_in_transaction", "activity.long_running"])
        tree = rb.data("locks.blocking").set_index("pid")
        ours = tree.loc[[*chain.values(), *adv.values()]]
        assert ours.loc[chain["root"], "state"] == "idle in transaction"
        depth = {k: (ours.loc[p, "root_pid"], ours.loc[p, "depth"], ours.loc[p, "lock_type"] or None)
                 for k, p in chain.items()}
        depth["root"] = depth["root"][:2] + (None,) if pd.isna(depth["root"][2]) else depth["root"]
        assert depth == {"root": (chain["root"], 0, None), "b": (chain["root"], 1, "transactionid"),
                         "c": (chain["root"], 2, "transactionid"), "d": (chain["root"], 3, "transactionid"),
                         "e": (chain["root"], 3, "tuple"), "f": (chain["root"], 1, "relation")}
        assert sorted(ours.loc[chain["f"], "blocked_by"]) == sorted([chain["root"], chain["b"]])
        assert ours.loc[chain["f"], "lock_target"] == "public.chain_a" and ours.loc[chain["f"], "lock_mode"] == \
            "AccessExclusiveLock"
        assert ours.loc[adv["waiter"], "lock_target"] == "advisory key 4711"
        assert (ours.loc[adv["waiter"], "root_pid"], ours.loc[adv["holder"], "state"]) == (adv["holder"], "idle")
        assert ours.loc[chain["root"], "blocked_count"] == 5
        findings = {(x.check, x.objects[0]): x for x in rb.findings if x.objects}
        assert findings[("locks.blocking", f"pid {chain['root']}")].objects == [
            f"pid {chain['root']}", "public.chain_a", "public.chain_b"]
        assert findings[("activity.idle_in_transaction", f"pid {chain['root']}")].objects[1] == "fault-root"
        root = findings[("locks.blocking", f"pid {chain['root']}")]
        assert (root.severity.value, root.value) == ("critical", 5) and "3 levels deep" in root.title
        assert findings[("locks.blocking", f"pid {adv['holder']}")].severity.value == "warning"
        assert findings[("activity.idle_in_transaction", f"pid {chain['root']}")].severity.value == "critical"
        assert findings[("activity.idle_in_transaction", f"pid {tx}")].severity.value == "warning"
        assert findings[("activity.long_running", f"pid {sleeper}")].severity.value == "warning"
        assert not any(x.check == "activity.long_running" and x.objects[0] == f"pid {chain['b']}"
                       for x in rb.findings if x.objects)  # a lock waiter is the blocker's doing
        plan = remediate.plan(rb).set_index("pid")
        assert plan.loc[chain["root"], "action"] == "terminate" and plan.loc[sleeper, "action"] == "cancel"
        assert plan.loc[adv["holder"], "sql"] == f"SELECT pg_terminate_backend({adv['holder']});"
        assert chain["b"] not in plan.index
        rb.close()


def test_remediation_changes_nothing_without_confirm_and_exactly_the_listed_pids_with_it(db):
    with Faults(db.conninfo) as f:
        chain, tx, sleeper = blocking_chain(f), idle_in_transaction(f), long_running(f)
        everyone = {*chain.values(), tx, sleeper}
        rb = _runbook(db)
        dry = remediate.apply(rb, [chain["root"], tx], [sleeper], confirm=False)
        assert not dry["done"].any() and alive(db.conninfo, everyone) == everyone
        own = int(rb.db.scalar("SELECT pg_backend_pid()"))
        elsewhere = psycopg.connect(db.server.conninfo(dbname="postgres"), autocommit=True)  # another database
        other = elsewhere.info.backend_pid
        done = remediate.apply(rb, [chain["root"], tx, own, other], [sleeper], confirm=True).set_index("pid")
        assert done.loc[own, "outcome"].startswith("refused") and not done.loc[own, "done"]
        assert "another database" in done.loc[other, "outcome"] and not done.loc[other, "done"]
        assert elsewhere.execute("SELECT 1").fetchone() == (1,)
        elsewhere.close()
        assert done.loc[[chain["root"], tx, sleeper], "done"].all()
        assert alive(db.conninfo, everyone) == everyone - {chain["root"], tx}
        f.wait_for("SELECT state = 'idle' FROM pg_stat_activity WHERE pid = %s", (sleeper,))
        assert isinstance(f.errors.get(sleeper), psycopg.errors.QueryCanceled)
        results = [x for x in rb.findings if x.check == "remediation.backends"]
        assert sev(results) == ["info"] * 3 + ["info", "info", "warning", "warning", "info"]
        rb.close()


def test_deadlocks_and_temp_files_count_in_the_window_when_history_has_it(db):
    from faults import deadlock, temp_file_sort
    from opsbook.history import take_snapshot

    with Faults(db.conninfo) as f:
        deadlock(f)  # before the snapshot: outside the window
    temp_file_sort(db.conninfo)
    config = db.config()
    rb = _runbook(db, config=config)
    rb.run(["locks.deadlocks", "storage.temp_files"])
    before = {x.check: x for x in rb.findings[1:]}
    assert before["locks.deadlocks"].severity.value == "warning" and "since statistics began" in \
        before["locks.deadlocks"].title
    take_snapshot(config, "test")
    with Faults(db.conninfo) as f:
        deadlock(f, table="deadlock_u")
        deadlock(f, table="deadlock_v")
    rb2 = _runbook(db, config=config, params={"window_minutes": 30})
    rb2.run(["locks.deadlocks", "storage.temp_files"])
    after = {x.check: x for x in rb2.findings[1:]}
    assert after["locks.deadlocks"].value == 2 and "in the last" in after["locks.deadlocks"].title
    assert rb2.data("locks.deadlocks")["deadlocks"].iloc[0] == 3
    assert after["storage.temp_files"].value == 0 and after["storage.temp_files"].severity.value == "ok"
    assert before["storage.temp_files"].value > 1_000_000
    rb.close(), rb2.close()


def test_pg_stat_statements_in_any_schema_or_none(any_db):
    rb = _runbook(any_db)
    rb.run(["queries.slow"])
    [skip] = [f for f in rb.findings if not f.check.startswith("connectivity.")]
    assert skip.severity.value == "info" and "not installed" in skip.skipped and "CREATE EXTENSION" in skip.remediation
    any_db.execute('CREATE SCHEMA "Odd ""Schema"""')
    any_db.execute('CREATE EXTENSION pg_stat_statements SCHEMA "Odd ""Schema"""')
    sql = slow_statements(any_db.conninfo, calls=25, rows=50_000)
    rb2 = _runbook(any_db, thresholds={"queries.slow": {"warning": 0.5, "min_calls": 20}})
    rb2.run(["queries.slow"])
    df = rb2.data("queries.slow")
    assert df.attrs["schema"] == 'Odd "Schema"'
    mine = df[df["query"].str.startswith(sql.split("%s")[0])]
    assert len(mine) == 1 and mine["calls"].iloc[0] == 25
    slow = [x for x in rb2.findings if x.check == "queries.slow" and x.severity.value in ("warning", "critical")]
    assert f"queryid {mine['queryid'].iloc[0]}" in {o for x in slow for o in x.objects}
    rb.close(), rb2.close()


def test_a_role_without_pg_read_all_stats_is_told_what_it_cannot_see(db):
    db.execute("DROP ROLE IF EXISTS ob_lowpriv")
    db.execute("CREATE ROLE ob_lowpriv LOGIN")
    db.execute("CREATE EXTENSION pg_stat_statements")
    slow_statements(db.conninfo, calls=3, rows=1000)
    low = from_dict({"targets": {"test": {"dsn": db.server.conninfo(dbname=db.name, user="ob_lowpriv")}}})
    try:
        with Faults(db.conninfo) as f:
            long_running(f)
            rb = _runbook(db, config=low)
            rb.run(["activity.long_running", "queries.slow", "connections.saturation", "locks.blocking"])
            hidden = {x.check: x for x in rb.findings if x.skipped}
            assert set(hidden) == {"activity.long_running", "queries.slow"}
            assert all(x.severity.value == "info" and "pg_read_all_stats" in x.remediation for x in hidden.values())
            assert rb.data("activity.long_running")["hidden"].any()
            rb.close()
    finally:
        db.close()
        db.execute("DROP OWNED BY ob_lowpriv")
        db.execute("DROP ROLE ob_lowpriv")


def test_connection_failures_are_told_apart(pg, monkeypatch):
    port = pg.configured_port()
    listener = socket.socket()  # accepts the TCP handshake and then never answers: a hung server
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    pg_conn = psycopg.connect(pg.conninfo(), autocommit=True)
    pg_conn.execute("DROP ROLE IF EXISTS ob_pw")
    pg_conn.execute("CREATE ROLE ob_pw LOGIN PASSWORD 'correct-horse'")
    monkeypatch.setenv("PGPASSWORD", "wrong-battery-staple")
    cases = {"dns": "host=no-such-host.invalid port=5432 user=x dbname=y",
             "refused": f"host=127.0.0.1 port={dead.getsockname()[1]} user=x dbname=y",
             "timeout": f"host=127.0.0.1 port={listener.getsockname()[1]} user=x dbname=y",
             "auth": f"host=127.0.0.1 port={port} user=ob_pw dbname=postgres",
             "no_database": pg.conninfo(dbname="no_such_db")}  # the superuser over the socket: only the db is wrong
    try:
        seen = {}
        for kind, dsn in cases.items():
            rb = Runbook("incident-triage", "t", config=from_dict({"targets": {"t": {"dsn": dsn}}}),
                         connect_timeout_s=2)
            assert rb.connect() is None
            [f] = rb.findings
            seen[kind] = (f.severity.value, f.value)
            assert f.remediation and "wrong-battery-staple" not in repr(f.to_dict())
            assert incident_priority(rb.findings).label == "P0"
        assert seen == {k: ("critical", k) for k in cases}
    finally:
        listener.close(), dead.close()
        pg_conn.execute("DROP ROLE ob_pw")
        pg_conn.close()


def test_freshness_rules_from_config_and_parameter(db):
    db.execute("CREATE TABLE listings (id int, scraped_at timestamptz)")
    db.execute("INSERT INTO listings VALUES (1, now() - interval '5 hours'), (2, now() - interval '6 hours')")
    db.execute('CREATE TABLE "Jobs" (finished_at timestamp)')
    db.execute("INSERT INTO \"Jobs\" VALUES (now() - interval '30 minutes')")
    db.execute("CREATE TABLE empty_t (ts date)")
    db.execute("ANALYZE")
    cfg = db.config(freshness={"public.listings": {"column": "scraped_at", "max_age_hours": 4}})
    params = {"freshness": {'public."Jobs"': {"column": "finished_at"}, "public.Jobs": {"column": "finished_at"},
                            "empty_t": {"column": "ts"}, "public.listings2": {"column": "x"},
                            "listings": {"column": "nope"}}}
    rb = _runbook(db, config=cfg, params=params)
    rb.run(["app.freshness"])
    got = {f.objects[0]: (f.severity.value, f.skipped) for f in rb.findings if f.check == "app.freshness"}
    assert got == {"public.listings.scraped_at": ("warning", None), "public.Jobs.finished_at": ("ok", None),
                   'public."Jobs".finished_at': ("info", "table not found"), "empty_t.ts": ("warning", None),
                   "public.listings2.x": ("info", "table not found"), "listings.nope": ("info", "column not found")}
    ctx = CheckContext(db=rb.db, target=rb.target, params={})
    capped = newest_rows(ctx, max_scan_rows=1).set_index("table_name")
    assert capped.loc["public.listings", "status"].startswith("not read: no index on scraped_at")
    rb.close()


# ---------------------------------------------------------------------------------------------- robustness
def _slot_rows(**cols):
    base = {"slot_name": ["lost", "never", "healthy"], "slot_type": "physical", "plugin": "", "database": "",
            "active": [False, False, True], "active_pid": [None, None, 4711], "wal_status": ["lost", None, "reserved"],
            "invalidation_reason": ["wal_removed", None, None], "safe_wal_size_bytes": None,
            "retained_wal_bytes": [None, None, 2e6], "xmin_age_xids": None, "inactive_s": [600.0, 60.0, None]}
    return pd.DataFrame({**base, **cols})


def test_slots_without_restart_lsn_are_judged_not_crashed():
    """NULL restart_lsn (an invalidated slot; a physical slot that never reserved WAL) beside a healthy slot."""
    fs = judge_slots(_slot_rows())
    assert [(f.objects, f.severity.value) for f in fs] == [(["lost"], "critical"), (["never"], "info")]
    assert "can never catch up" in fs[0].title and fs[0].threshold == "lost"
    text = " ".join(f"{f.title} {f.detail}" for f in fs)
    assert "nan" not in text and "retains 0 B" not in text and "only grows" not in text
    # PostgreSQL 13-16 have no invalidation_reason; wal_status alone says lost
    fs = judge_slots(_slot_rows(invalidation_reason=None, wal_status=["lost", float("nan"), "reserved"]))
    assert [f.severity.value for f in fs] == ["critical", "info"]
    fs = judge_slots(_slot_rows().iloc[1:])  # without the lost one: the healthy one is said to be fine
    assert [(f.severity.value, f.title) for f in fs][1] == ("ok", "the other 1 slot active, each retaining less "
                                                                  "than 1.0 GB")


def _write_wal(conninfo: str, rounds: int = 4) -> None:
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS wal_burn (g int, t text)")
        for _ in range(rounds):
            c.execute("INSERT INTO wal_burn SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
            c.execute("SELECT pg_switch_wal()")


def test_a_lost_and_a_never_reserved_slot_on_a_real_server(any_db, tmp_path):
    """max_slot_wal_keep_size invalidates one slot (wal_status lost), another never reserved WAL (NULL), a third
    is consumed for real by pg_receivewal: critical, info, and no finding but ok for the healthy one."""
    import subprocess
    import time
    import uuid

    tag = uuid.uuid4().hex[:6]
    lost, never, healthy = (f"t_{k}_{tag}" for k in ("lost", "never", "healthy"))
    admin = psycopg.connect(any_db.server.conninfo(), autocommit=True)
    receiver = None
    try:
        admin.execute("SELECT pg_create_physical_replication_slot(%s, true)", (lost,))
        admin.execute("SELECT pg_create_physical_replication_slot(%s)", (never,))
        admin.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        admin.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while admin.execute("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s",
                            (lost,)).fetchone()[0] != "lost":
            assert time.monotonic() < deadline, "the slot never became lost"
            _write_wal(any_db.conninfo)
            admin.execute("CHECKPOINT")
        admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        admin.execute("SELECT pg_reload_conf()")
        admin.execute("SELECT pg_create_physical_replication_slot(%s, true)", (healthy,))
        (tmp_path / "wal").mkdir()
        receiver = subprocess.Popen([str(any_db.server.bindir / "pg_receivewal"), "-D", str(tmp_path / "wal"),
                                     "-S", healthy, "-d", any_db.server.conninfo(), "--no-loop"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not admin.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (healthy,)).fetchone()[0]:
            assert time.monotonic() < deadline and receiver.poll() is None, "pg_receivewal did not stream"
            time.sleep(0.05)
        rb = _runbook(any_db)
        rb.run(["replication.slots"])
        rb.close()
        got = {f.objects[0] if f.objects else "-": f for f in rb.findings if f.check == "replication.slots"}
        assert got[lost].severity.value == "critical" and "can never catch up" in got[lost].title
        assert got[never].severity.value == "info" and "never reserved" in got[never].title
        assert healthy not in got, got[healthy].title  # active and small: healthy, no finding of its own
        assert not [f for f in got.values() if f.severity.value == "warning"]  # no other slot on this server
        text = " ".join(f"{f.title} {f.detail}" for f in got.values())
        assert "nan" not in text and "only grows" not in text and "retains 0 B" not in text
    finally:
        admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        admin.execute("SELECT pg_reload_conf()")
        if receiver is not None:
            receiver.terminate()
            receiver.wait(10)
        for name in (lost, never, healthy):
            admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                          (name,))
        admin.close()
