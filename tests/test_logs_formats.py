"""The log formats users bring (syslog, Heroku logplex, Cloud SQL and CloudNativePG JSON, RDS, PgBouncer; gzip, bzip2
and xz), each read by opsbook and by pgbadger: event counts per severity, and statements, equal. Where the two
legitimately differ the test says so and why."""
from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from opsbook.logs import Problems, count_kinds, iter_events, plan
from opsbook.logs.executions import executions
from opsbook.logs.sources import series

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
ATTACHED = {"DETAIL": "detail", "HINT": "hint", "CONTEXT": "context", "STATEMENT": "statement"}
COMPRESS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}
needs_pgbadger = pytest.mark.skipif(shutil.which("pgbadger") is None,
                                    reason="pgbadger not installed (apt-get install pgbadger)")


def copy(tmp_path, name, compress=None) -> Path:
    """The fixture in tmp_path (pgbadger writes beside nothing, but its input may be compressed for the test)."""
    data = (FIXTURES / name).read_bytes()
    if compress:
        path = tmp_path / f"{name}.{compress}"
        path.write_bytes(COMPRESS[compress](data))
    else:
        path = tmp_path / name
        path.write_bytes(data)
    return path


def pgbadger(path: Path, *args) -> dict:
    out = path.parent / f"{path.name}.pgbadger.json"
    # its own pid folder: pgbadger refuses to start while another instance's pid file is in /tmp
    subprocess.run(["pgbadger", "-q", "-j", "1", "--pid-dir", str(path.parent), *args, "-x", "json", "-o", str(out),
                    str(path)], check=True, timeout=120, capture_output=True)
    return json.loads(out.read_text())


def pgbadger_counts(d: dict) -> dict:
    """pgbadger's "logs per type" summed over databases (DETAIL, STATEMENT... lines counted too), and its number
    of queries (statements with a duration, one per execution)."""
    out: dict = {}
    for per_db in d.get("logs_type", {}).values():
        for sev, n in per_db.items():
            out[sev] = out.get(sev, 0) + n
    out["queries"] = sum(v.get("queries_number", 0) for v in d.get("overall_stat", {}).values() if isinstance(v, dict))
    return out


def read(path, **kw):
    problems = Problems()
    events = list(iter_events(path, problems=problems, **kw))
    assert not problems, problems.lines()
    return events, problems


def our_counts(events) -> dict:
    """opsbook's events per severity, and the DETAIL/HINT/CONTEXT/STATEMENT lines attached to them (pgbadger counts
    those lines as log entries of their own); a duration's statement is its message's, not a STATEMENT line."""
    out: dict = {}
    for e in events:
        out[e.severity] = out.get(e.severity, 0) + 1
        for sev, field in ATTACHED.items():
            if getattr(e, field) and not (field == "statement" and e.kind == "slow_statement"):
                out[sev] = out.get(sev, 0) + 1
    out["queries"] = executions(events)
    return out


INCIDENT = {"LOG": 15, "ERROR": 4, "FATAL": 2, "WARNING": 1, "DETAIL": 8, "STATEMENT": 6, "CONTEXT": 2, "HINT": 1,
            "queries": 4}  # what make_fixtures.py wrote: the expectation pgbadger confirms


@needs_pgbadger
@pytest.mark.parametrize(("name", "compress", "fmt"), [
    ("pg-syslog.1.log", "bz2", "syslog"),
    ("pg-syslog.2.log", "gz", "syslog"),
    ("logplex.log", "gz", "logplex"),
    ("cloudsql.log", "gz", "cloudsql"),
    ("rds.log", "bz2", "stderr"),
    ("extended_protocol.log", "xz", "stderr"),
])
def test_counts_per_severity_equal_pgbadgers(tmp_path, name, compress, fmt):
    path = copy(tmp_path, name, compress)
    (lf,) = plan(path)
    assert lf.fmt == fmt  # detected, not given
    classic = name == "pg-syslog.1.log"  # "Feb 15 10:00:01": the host's local time, here UTC
    events, problems = read(path, log_timezone="UTC" if classic else None)
    expected = pgbadger_counts(pgbadger(path))
    assert our_counts(events) == expected
    if name != "rds.log":
        assert expected == INCIDENT
    if name.startswith("pg-syslog"):  # the cron line in the same file is someone else's, said so
        assert problems.notes() == ["1 event(s) of other programs' syslog lines left out"]
    if classic:
        assert events[0].ts == datetime(datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).year, 2, 15, 10,
                                        0, 1, tzinfo=timezone.utc)
        paris = next(iter_events(path, log_timezone="Europe/Paris"))  # a server in Paris logs 10:00 for 09:00 UTC
        assert paris.ts == events[0].ts - timedelta(hours=1)
        problems = Problems()
        assert len(list(iter_events(path, problems=problems))) == len(events)
        assert problems.lines() == [f"{path}: classic syslog times carry no zone: read as UTC where the "
                                    "log_line_prefix has no %m/%t (give log_timezone)"]


@needs_pgbadger
def test_cloudnativepg_counts_equal_pgbadgers_of_the_same_log(tmp_path):
    """pgbadger reads CloudNativePG's envelope only since 12.1 (darold/pgbadger#761); the Debian 12.0 here finds no
    event in it, even with -f jsonlog. The same incident in Cloud SQL's envelope is what it is compared with then."""
    path = copy(tmp_path, "cnpg.log", "gz")
    (lf,) = plan(path)
    assert lf.fmt == "cnpg"
    events, problems = read(path)
    theirs = pgbadger_counts(pgbadger(path, "-f", "jsonlog"))
    version = subprocess.run(["pgbadger", "--version"], capture_output=True, text=True).stdout
    if tuple(int(x) for x in re.findall(r"(\d+)\.(\d+)", version)[0]) < (12, 1):
        assert theirs == {"queries": 0}  # the difference named above, checked so that an upgrade is noticed
        theirs = pgbadger_counts(pgbadger(copy(tmp_path, "cloudsql.log")))
    assert our_counts(events) == theirs == INCIDENT
    assert problems.notes() == ["2 event(s) of CloudNativePG's own messages (instance manager, not PostgreSQL) "
                                "left out"]
    (e,) = [e for e in events if e.kind == "deadlock"]
    assert (e.user, e.database, e.client, e.pid) == ("app", "shop", "10.0.0.5", 2351) and len(e.statements) == 2


def test_envelopes_are_not_supabase_exports(tmp_path):
    """Cloud SQL and CloudNativePG lines were read as "a malformed Supabase export": each is its own format, with
    its fields, and a Cloud Logging export as one JSON array is read too."""
    for name, fmt in (("cloudsql.log", "cloudsql"), ("cnpg.log", "cnpg")):
        (lf,) = plan(FIXTURES / name)
        assert lf.fmt == fmt
    events, _ = read(FIXTURES / "cloudsql.log")
    (e,) = [e for e in events if e.kind == "lock_wait"]
    assert (e.user, e.database, e.pid, e.blocking_pids, e.relation) == ("app", "shop", 2347, (2346,), "accounts")
    (slow,) = [e for e in events if e.duration_ms == 1523.25]
    assert slow.statement == "SELECT a,\n       b\n  FROM big ORDER BY a"  # a continuation inside the payload
    rows = [json.loads(line) for line in (FIXTURES / "cloudsql.log").read_text().splitlines()]
    array = tmp_path / "cloudsql-export.json"
    array.write_text(json.dumps(rows, indent=2))
    again, _ = read(array)
    assert count_kinds(again) == count_kinds(events)


@needs_pgbadger
@pytest.mark.parametrize("name", ["pgbouncer.log", "pgbouncer.1.21.log"])
def test_pgbouncer_log(tmp_path, name):
    """PgBouncer's own log: pgbadger counts its WARNING/ERROR/FATAL lines as errors and its "login attempt" lines
    as connections; it does not count LOG lines per type. One difference, named: pgbadger skips a line whose text
    has no "word: " before its first colon, so PgBouncer's startup FATAL ("@src/main.c:1045 in function main():
    cannot load config file") is not among its errors; opsbook reads it."""
    path = copy(tmp_path, name, "gz")
    (lf,) = plan(path)
    assert lf.fmt == "pgbouncer"
    events, _ = read(path)
    d = pgbadger(path)
    errors = [e for e in events if e.severity in ("WARNING", "ERROR", "FATAL")]
    startup_fatal = [e for e in errors if e.message.startswith("@src/")]
    assert len(startup_fatal) == 1
    assert len(errors) - len(startup_fatal) == d["pgb_overall_stat"]["errors_number"] == 3
    logins = [e for e in events if "login attempt" in e.message]
    assert len(logins) == d["pgb_connection_info"]["count"] == 6
    assert {e.client for e in logins} == set(d["pgb_connection_info"]["host"])  # addresses without their port
    assert {(e.user, e.database) for e in logins} == {("app", "shop")}
    assert all(e.pid == 1234 for e in events)


@needs_pgbadger
def test_parse_and_bind_are_not_statements(tmp_path):
    """log_min_duration_statement = 0 under the extended protocol logs parse, bind and execute: 7 duration lines
    for 4 statements executed (two simple queries, an unnamed and a named prepared statement). pgbadger counts 4;
    so do opsbook's count of executions and the post-mortem's count of slow statements."""
    from opsbook.incident.postmortem.evidence import read_log
    from opsbook.incident.postmortem.window import Window

    path = copy(tmp_path, "extended_protocol.log")
    events, _ = read(path)
    durations = [e for e in events if e.message.startswith("duration: ")]
    assert len(durations) == 7  # each line is still an event; parse and bind phases are not statements
    assert sum(1 for e in events if e.kind == "slow_statement") == 4
    assert executions(events) == pgbadger_counts(pgbadger(path))["queries"] == 4
    t0 = datetime(2024, 2, 15, 10, 0, tzinfo=timezone.utc)
    ev = read_log(path, Window(t0, t0 + timedelta(minutes=1), timedelta(0)))
    assert ev.counts["slow_statement"] == 4


def test_rds_client_is_the_address_without_its_port(tmp_path):
    """RDS writes %r, "host(port)": a password spray of 40 accounts from one address, one try a minute from a new
    port each time, was 40 addresses with one failure each ("ok"); it is one address with 40."""
    from opsbook.checks.security.logins import judge_failed_logins, log_failures
    import pandas as pd

    rows, note = log_failures(FIXTURES / "rds.log", datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert note == ""
    spray = [r for r in rows if r["client_addr"] == "203.0.113.7"]
    assert len(spray) == 40 and len({r["user_name"] for r in spray}) == 40
    df = pd.DataFrame(rows)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df.attrs.update(window_hours=24 * 365 * 5, sources=["server log"], notes=[])
    (finding,) = [f for f in judge_failed_logins(df) if "203.0.113.7" in f.title]
    assert (finding.severity.name, finding.value) == ("WARNING", 40)
    assert "40 account(s)" in finding.detail


def test_compressed_files_read_like_plain_ones_and_damage_is_reported(tmp_path):
    plain, _ = read(FIXTURES / "rds.log")
    for kind in COMPRESS:
        events, _ = read(copy(tmp_path, "rds.log", kind))
        assert count_kinds(events) == count_kinds(plain)
        # long enough for several bzip2 blocks (900 kB each): the damage is in a later one
        whole = COMPRESS[kind]((FIXTURES / "rds.log").read_bytes() * 150)
        cut = tmp_path / f"cut.log.{kind}"
        cut.write_bytes(whole[: len(whole) // 2])
        problems = Problems()
        got = list(iter_events(cut, problems=problems))
        assert 0 < len(got) < 150 * len(plain), kind  # the events before the damage are read
        assert any(f"cut.log.{kind}" in line for line in problems.lines()), (kind, problems.lines())


def test_folder_mixing_formats_reads_every_file_in_time_order(tmp_path):
    """csvlog no longer wins a folder: the stderr file of another day, the syslog and PgBouncer files are read too;
    only the stderr twin of the csvlog (the same log, same name) is left out, said so."""
    day1 = (FIXTURES / "extended_protocol.log").read_text()
    (tmp_path / "postgresql-2024-02-14.log").write_text(day1.replace("2024-02-15", "2024-02-14"))
    csv_line = ('2024-02-15 11:00:00.000 UTC,"app","shop",4000,"10.0.0.5:5000",65cde0a1.fa0,1,"idle",'
                '2024-02-15 10:59:00 UTC,3/1,0,FATAL,53300,"sorry, too many clients already",,,,,,,,,"psql",'
                '"client backend",,0\n')
    (tmp_path / "postgresql-2024-02-15.csv").write_text(csv_line)
    (tmp_path / "postgresql-2024-02-15.log").write_text(
        "2024-02-15 11:00:00.000 UTC [4000] FATAL:  sorry, too many clients already\n")
    shutil.copy(FIXTURES / "pgbouncer.1.21.log", tmp_path / "pgbouncer.log")
    shutil.copy(FIXTURES / "pg-syslog.2.log", tmp_path / "syslog")
    problems = Problems()
    events = list(iter_events(tmp_path, problems=problems))
    by_source = {}
    for e in events:
        by_source[Path(e.source).name] = by_source.get(Path(e.source).name, 0) + 1
    assert by_source == {"postgresql-2024-02-14.log": 22, "postgresql-2024-02-15.csv": 1, "pgbouncer.log": 22,
                         "syslog": 22}
    assert problems.lines() == [f"{tmp_path / 'postgresql-2024-02-15.log'}: same log in another format (stderr); "
                                "read postgresql-2024-02-15.csv (csvlog) instead"]
    assert [e.ts for e in events] == sorted(e.ts for e in events)


def test_overlapping_files_are_separate_runs(tmp_path):
    """Files that overlap in time (PgBouncer's beside PostgreSQL's) are runs of their own, to be merged by time; a
    rotated log is one run."""
    a = tmp_path / "postgresql-1.log"
    b = tmp_path / "postgresql-2.log"
    a.write_text("2024-02-15 10:00:00.000 UTC [1] LOG:  checkpoint starting: time\n")
    b.write_text("2024-02-15 11:00:00.000 UTC [1] LOG:  checkpoint starting: time\n")
    bouncer = copy(tmp_path, "pgbouncer.log")
    stamp = datetime(2024, 2, 15, 10, 30, tzinfo=timezone.utc).timestamp()
    os.utime(a, (stamp, stamp))  # the first file was last written before the second began
    os.utime(bouncer, (stamp + 7200, stamp + 7200))
    runs = series(plan(tmp_path))
    assert [[f.path.name for f in run] for run in runs] == [["postgresql-1.log", "postgresql-2.log"],
                                                           ["pgbouncer.log"]]


def test_classic_syslog_across_new_year(tmp_path):
    """A classic syslog line has no year: a file written from December to January puts December in the year
    before, not a year ahead of the file itself."""
    path = tmp_path / "postgresql.syslog"
    path.write_text("Dec 31 23:59:59 db1 postgres[7]: [1-1] LOG:  checkpoint starting: time\n"
                    "Jan  1 00:00:01 db1 postgres[7]: [2-1] LOG:  checkpoint starting: time\n")
    stamp = datetime(2025, 1, 1, 0, 5, tzinfo=timezone.utc).timestamp()
    os.utime(path, (stamp, stamp))
    events = list(iter_events(path, log_timezone="UTC"))
    assert [e.ts for e in events] == [datetime(2024, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
                                      datetime(2025, 1, 1, 0, 0, 1, tzinfo=timezone.utc)]


def test_syslog_whole_messages_unsplit(tmp_path):
    """syslog_split_messages = off: one syslog line a message, its newlines written #012 by rsyslog; the DETAIL
    and the statement's continuation are read as when split."""
    path = tmp_path / "postgresql.syslog"
    path.write_text("2024-02-15T10:00:05+00:00 db1 postgres[2347]: [5] user=app,db=shop LOG:  process 2347 still "
                    "waiting for ShareLock on transaction 755 after 1000.123 ms#012user=app,db=shop DETAIL:  Process "
                    "holding the lock: 2346. Wait queue: 2347.#012user=app,db=shop STATEMENT:  UPDATE accounts#011SET "
                    "balance = 0#012#011 WHERE id = 1\n")
    (e,) = read(path)[0]
    assert (e.kind, e.blocking_pids, e.user, e.database) == ("lock_wait", (2346,), "app", "shop")
    assert e.statement == "UPDATE accounts\tSET balance = 0\n WHERE id = 1"


def test_twins_are_one_log_in_two_formats_only(tmp_path):
    """logrotate's postgresql.log.1 and postgresql.csv.1 are one log (the csv is read); postgresql.log and its
    compressed predecessor postgresql.log.gz are two files of one format: both read."""
    line = "2024-02-15 1{h}:00:00.000 UTC [7] LOG:  checkpoint starting: time\n"
    (tmp_path / "postgresql.log.1").write_text(line.format(h=0))
    (tmp_path / "postgresql.csv.1").write_text('2024-02-15 10:00:00.000 UTC,,,7,,65cde0a1.7,1,,2024-02-15 09:00:00 UTC'
                                               ',,0,LOG,00000,"checkpoint starting: time",,,,,,,,,"",checkpointer,,0\n')
    (tmp_path / "postgresql.log").write_text(line.format(h=2))
    (tmp_path / "postgresql.log.gz").write_bytes(gzip.compress(line.format(h=1).encode()))
    problems = Problems()
    events = list(iter_events(tmp_path, problems=problems))
    assert [(Path(e.source).name, e.ts.hour) for e in events] == [("postgresql.csv.1", 10), ("postgresql.log.gz", 11),
                                                                  ("postgresql.log", 12)]
    assert problems.lines() == [f"{tmp_path / 'postgresql.log.1'}: same log in another format (stderr); read "
                                "postgresql.csv.1 (csvlog) instead"]
