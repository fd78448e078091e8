"""Low privilege is said, never read as healthy: a CONNECT-only role, pg_monitor and a superuser meet the same real
faults (three blocking trees under idle transactions, an int4 sequence at 93%) on each server version."""
from __future__ import annotations

import pytest

from conftest import drop_database, make_database
from faults import Faults, advisory_wait, blocking_chain, drop_role, idle_in_transaction, monitoring_role, sequence_at
from opsbook.config.file import from_dict
from opsbook.run.context import Runbook
from opsbook.core.severity import incident_priority

INCIDENT = ["locks.blocking", "activity.idle_in_transaction", "activity.long_running", "connections.idle",
            "connections.saturation"]
CAPACITY = ["sequences.exhaustion", "tables.bloat"]
LOWERED = {"activity.idle_in_transaction": {"warning": 1, "critical": 600}, "locks.blocking": {"min_wait_s": 0}}


@pytest.fixture(scope="module", params=["embedded", "pg15"])
def faulty(request):
    """One database per server version with the faults alive for the whole module, and three roles on it."""
    server = request.getfixturevalue("pg" if request.param == "embedded" else "pg15")
    d = make_database(server)
    roles = {}
    seq = sequence_at(d.conninfo, "orders", 93)
    with Faults(d.conninfo) as f:
        chains = [blocking_chain(f, "t1"), blocking_chain(f, "t2")]
        adv = advisory_wait(f)
        tx = idle_in_transaction(f)
        f.wait_for("SELECT count(*) >= 2 FROM pg_stat_activity WHERE state = 'idle in transaction' "
                   "AND now() - state_change > interval '1.2 seconds'")
        try:
            for name, grants in (("ob_connect", ()), ("ob_monitor", ("pg_monitor",)),
                                 ("ob_monitor_data", ("pg_monitor", "pg_read_all_data"))):
                roles[name] = monitoring_role(d.conninfo, name, *grants)
            roles["superuser"] = d.conninfo
            yield {"db": d, "roles": roles, "chains": chains, "advisory": adv, "tx": tx, "sequence": seq}
        finally:
            for name in roles:
                if name != "superuser":
                    drop_role(d.conninfo, name)
    drop_database(d)


def run_as(faulty, role: str, check_ids) -> Runbook:
    cfg = from_dict({"targets": {"test": {"dsn": faulty["roles"][role]}}})
    rb = Runbook("incident-triage", "test", config=cfg, thresholds=LOWERED)
    assert rb.connect() is not None
    rb.run(check_ids)
    rb.close()
    return rb


def judged(rb: Runbook) -> set[tuple]:
    """What a run concluded, without the clock: check, severity and objects of each finding."""
    return {(f.check, f.severity.value, tuple(f.objects)) for f in rb.findings if not f.check.startswith("connectivity.")}


def partial(rb: Runbook) -> dict[str, object]:
    return {f.check: f for f in rb.findings if f.skipped and f.skipped.startswith("partial visibility: ")}


def test_connect_only_role_still_finds_every_blocking_tree_and_says_what_it_cannot_see(faulty):
    rb = run_as(faulty, "ob_connect", INCIDENT)
    roots = {c["root"] for c in faulty["chains"]} | {faulty["advisory"]["holder"]}
    blocking = {f.objects[0]: f for f in rb.findings if f.check == "locks.blocking" and f.severity.value != "info"}
    assert set(blocking) == {f"pid {p}" for p in roots}  # the trees come from pg_locks, which every role reads
    assert [blocking[f"pid {c['root']}"].severity.value for c in faulty["chains"]] == ["critical", "critical"]
    assert all(blocking[f"pid {c['root']}"].value == 5 for c in faulty["chains"])
    tree = rb.data("locks.blocking").set_index("pid")
    assert tree.loc[faulty["chains"][0]["d"], "depth"] == 3 and tree.loc[faulty["chains"][0]["root"], "state"] == "hidden"
    assert incident_priority(rb.findings).label == "P1"  # was P2: "no session blocked"
    seen = partial(rb)
    assert set(seen) == {"locks.blocking", "activity.idle_in_transaction", "activity.long_running",
                         "connections.idle"}
    for f in seen.values():
        assert f.severity.value == "info" and f.value > 0 and "pg_monitor" in f.remediation \
            and "pg_read_all_stats" in f.remediation
    assert seen["locks.blocking"].value == 14  # 2 x 6 chain sessions + the advisory pair
    # the idle transactions are not "0 idle in transaction": it says it could not see them, and which block
    idle = seen["activity.idle_in_transaction"]
    assert "6 blocking others" in idle.skipped  # root, b and c of each chain; the advisory holder is not in one
    assert all(str(c['root']) in idle.detail for c in faulty["chains"])


def test_connect_only_role_is_told_it_cannot_read_the_sequence_or_the_tables(faulty):
    rb = run_as(faulty, "ob_connect", CAPACITY)
    [ok, hidden] = [f for f in rb.findings if f.check == "sequences.exhaustion"]
    tables = partial(rb)["tables.bloat"]  # the fault tables have rows this role may not read: no statistics
    assert tables.value == 6 and "public.t1_a" in tables.detail and "pg_read_all_data" in tables.remediation
    assert "highest 0.00%" not in ok.title or "this role can read" in ok.title
    assert hidden.skipped.startswith("partial visibility: 1 sequences") and hidden.value == 1
    assert faulty["sequence"] in hidden.detail and "pg_read_all_data" in hidden.remediation
    assert rb.data("sequences.exhaustion")["pct_used"].isna().all()


def test_pg_monitor_sees_what_a_superuser_sees(faulty):
    superuser = run_as(faulty, "superuser", INCIDENT + CAPACITY)
    monitor = run_as(faulty, "ob_monitor", INCIDENT)
    assert judged(monitor) == {x for x in judged(superuser) if x[0] in INCIDENT} and not partial(monitor)
    critical = {x for x in judged(superuser) if x[1] == "critical"}
    assert ("sequences.exhaustion", "critical", (faulty["sequence"], "public.orders.id")) in critical
    assert {x[2][0] for x in critical if x[0] == "activity.idle_in_transaction"} == {
        f"pid {c['root']}" for c in faulty["chains"]}
    # sequence values need a data grant that pg_monitor does not carry: it says so, and with it all is equal
    seq = run_as(faulty, "ob_monitor", CAPACITY)
    assert set(partial(seq)) == {"sequences.exhaustion", "tables.bloat"}
    full = run_as(faulty, "ob_monitor_data", INCIDENT + CAPACITY)
    assert judged(full) == judged(superuser) and not partial(full)


@pytest.mark.slow
def test_incident_triage_runs_through_when_locks_blocking_is_skipped(db):
    """The runbook's locks cell read len() of a skipped check's data (None): a TypeError, no report (issue 12)."""
    from opsbook.run.runner import run_runbook

    db.execute("REVOKE EXECUTE ON FUNCTION pg_blocking_pids(integer) FROM PUBLIC")
    dsn = monitoring_role(db.conninfo, "ob_no_blocking")
    try:
        config = from_dict({"targets": {"test": {"dsn": dsn}}})
        result = run_runbook("incident-triage", "test", {}, config=config, output_dir=db.server.data_dir.parent / "r")
        assert result.exit_code == 0 and result.sidecar["status"] == "ok", result.sidecar["error"]
        [skip] = [f for f in result.sidecar["findings"] if f["check"] == "locks.blocking"]
        assert skip["severity"] == "info" and skip["skipped"].startswith("missing privilege")
    finally:
        db.close()
        drop_role(db.conninfo, "ob_no_blocking")
