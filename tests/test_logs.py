"""The log reader on small logs the tests write: formats, prefixes, continuation lines, rotation, gzip, damage."""
from __future__ import annotations

import csv
import gzip
import json
import os
from datetime import datetime, timezone

import pytest

from opsbook.logs import LogSourceError, Problems, count_kinds, iter_events
from opsbook.logs.prefix import compile_prefix, detect_prefix

STDERR = """\
2026-12-01 09:44:33.262 UTC [16764] postgres@shop LOG:  process 16764 still waiting for ShareLock on transaction 755 after 200.664 ms
2026-12-01 09:44:33.262 UTC [16764] postgres@shop DETAIL:  Process holding the lock: 16760. Wait queue: 16764.
2026-12-01 09:44:33.262 UTC [16764] postgres@shop CONTEXT:  while updating tuple (0,1) in relation "pm_branches"
2026-12-01 09:44:33.262 UTC [16764] postgres@shop STATEMENT:  UPDATE pm_branches
\t   SET balance = balance - 1
\t WHERE id = 1
2026-12-01 09:44:33.761 UTC [16764] postgres@shop ERROR:  canceling statement due to statement timeout
2026-12-01 09:44:33.761 UTC [16764] postgres@shop STATEMENT:  UPDATE pm_branches SET balance = balance - 1 WHERE id = 1
2026-12-01 09:44:34.690 UTC [16845] postgres@shop ERROR:  deadlock detected
2026-12-01 09:44:34.690 UTC [16845] postgres@shop DETAIL:  Process 16845 waits for ShareLock on transaction 765; blocked by process 16846.
\tProcess 16846 waits for ShareLock on transaction 764; blocked by process 16845.
\tProcess 16845: UPDATE pm_branches SET balance = balance + 1 WHERE id = 3
\tProcess 16846: UPDATE pm_branches SET balance = balance + 1 WHERE id = 2
2026-12-01 09:44:34.690 UTC [16845] postgres@shop HINT:  See server log for query details.
2026-12-01 09:44:34.814 UTC [16848] postgres@shop LOG:  temporary file: path "base/pgsql_tmp/pgsql_tmp16848.1", size 2867200
2026-12-01 09:44:35.017 UTC [16868] postgres@shop FATAL:  sorry, too many clients already
2026-12-01 09:44:35.094 UTC [16751] LOG:  checkpoint complete: wrote 914 buffers (5.6%), wrote 3 SLRU buffers; 0 WAL file(s) added, 0 removed, 0 recycled; write=0.017 s, sync=0.001 s, total=0.022 s; sync files=0
2026-12-01 09:44:36.000 UTC [16900] postgres@shop LOG:  duration: 1523.250 ms  statement: SELECT pg_sleep(1.5)
2026-12-01 09:44:37.000 UTC [16901] alice@shop FATAL:  password authentication failed for user "alice"
2026-12-01 09:44:37.500 UTC [16902] LOG:  automatic vacuum of table "shop.public.pm_branches": index scans: 0
\tsystem usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.25 s
2026-12-01 09:44:38.000 UTC [16903] postgres@shop LOG:  disconnection: session time: 0:01:02.500 user=postgres database=shop host=[local]
2026-12-01 09:44:39.000 UTC [16904] postgres@shop LOG:  statement: ALTER ROLE app PASSWORD 'hunter2'
"""
KINDS = {"lock_wait": 1, "statement_timeout": 1, "deadlock": 1, "temp_file": 1, "too_many_connections": 1,
         "checkpoint": 1, "slow_statement": 1, "authentication_failed": 1, "autovacuum": 1, "disconnection": 1,
         "other": 1}
PREFIX = "%m [%p] %q%u@%d "


def write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    p.write_text(text) if mode == "w" else p.write_bytes(text)
    return p


def test_stderr_events_kinds_numbers_and_continuations(tmp_path):
    path = write(tmp_path, "postgresql.log", STDERR)
    problems = Problems()
    events = list(iter_events(path, prefix=PREFIX, problems=problems))
    assert not problems, problems.lines()
    assert count_kinds(events) == KINDS
    by = {e.kind: e for e in events}
    wait = by["lock_wait"]
    assert (wait.pid, wait.user, wait.database, wait.lock_type, wait.blocking_pids, wait.relation) == \
        (16764, "postgres", "shop", "ShareLock", (16760,), "pm_branches")
    assert wait.duration_ms == pytest.approx(200.664)
    assert wait.statement == "UPDATE pm_branches\n   SET balance = balance - 1\n WHERE id = 1"
    assert wait.ts == datetime(2026, 12, 1, 9, 44, 33, 262000, tzinfo=timezone.utc)
    dl = by["deadlock"]
    assert dl.statements == ("UPDATE pm_branches SET balance = balance + 1 WHERE id = 3",
                             "UPDATE pm_branches SET balance = balance + 1 WHERE id = 2")
    assert dl.hint == "See server log for query details."
    assert by["temp_file"].size_bytes == 2867200
    assert (by["checkpoint"].buffers, by["checkpoint"].duration_ms) == (914, pytest.approx(22.0))
    assert by["slow_statement"].duration_ms == pytest.approx(1523.25)
    assert by["slow_statement"].statement == "SELECT pg_sleep(1.5)"
    assert by["autovacuum"].relation == "shop.public.pm_branches"
    assert by["autovacuum"].duration_ms == pytest.approx(250.0)
    assert by["disconnection"].session_s == pytest.approx(62.5)
    assert by["authentication_failed"].user == "alice"
    assert [e.ts for e in events] == sorted(e.ts for e in events)


def test_password_literals_are_redacted(tmp_path):
    path = write(tmp_path, "postgresql.log", STDERR)
    last = list(iter_events(path, prefix=PREFIX))[-1]
    assert "hunter2" not in last.message + repr(last.as_dict())


def test_prefix_detected_from_lines_and_generic_fallback(tmp_path):
    assert detect_prefix(STDERR.splitlines(True)) == PREFIX
    custom = STDERR.replace("postgres@shop ", "db=shop,user=postgres ")  # a prefix no list knows
    path = write(tmp_path, "custom.log", custom)
    problems = Problems()
    events = list(iter_events(path, problems=problems))
    assert count_kinds(events) == KINDS  # the generic reading still classifies every event
    assert events[0].pid == 16764 and events[0].user is None
    assert any("log_line_prefix not recognised" in line for line in problems.lines())
    named = list(iter_events(path, prefix="%m [%p] %qdb=%d,user=%u "))
    assert named[0].user == "postgres" and named[0].database == "shop"


@pytest.mark.parametrize("prefix,line", [
    ("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
     "2026-12-01 09:44:33 UTC [42]: [3-1] user=bob,db=shop,app=psql x,client=10.0.0.5 ERROR:  boom"),
    ("%t:%r:%u@%d:[%p]:", "2026-12-01 09:44:33 UTC:10.0.0.5(5432):bob@shop:[42]:ERROR:  boom"),
    ("%m %e [%p] ", "2026-12-01 09:44:33.5 +01 23505 [42] ERROR:  boom"),
])
def test_any_prefix_given(prefix, line):
    m = compile_prefix(prefix).match(line)
    assert m and m.group("severity") == "ERROR" and m.group("message") == "boom" and m.group("pid") == "42"


def test_csvlog_and_jsonlog_with_multiline_statement(tmp_path):
    stmt = "SELECT 1\nFROM t\nWHERE x = 'a,b'"
    row = ["2026-12-01 09:44:33.761 UTC", "postgres", "shop", "16764", "[local]", "6b0.1", "3", "UPDATE",
           "2026-12-01 09:44:30 UTC", "3/7", "0", "ERROR", "57014", "canceling statement due to statement timeout",
           "", "", "", "", "", stmt, "", "", "checkout_api", "client backend", "", "0"]
    with open(tmp_path / "postgresql.csv", "w", newline="") as f:
        csv.writer(f).writerows([row, row[:3]])  # the second row is damaged
    problems = Problems()
    (e,) = iter_events(tmp_path / "postgresql.csv", problems=problems)
    assert (e.kind, e.sqlstate, e.application, e.statement, e.pid) == \
        ("statement_timeout", "57014", "checkout_api", stmt, 16764)
    assert problems.lines() == [f"{tmp_path / 'postgresql.csv'}: malformed csvlog row (too few fields) (line 4)"]
    j = {"timestamp": "2026-12-01 09:44:33.761 UTC", "user": "postgres", "dbname": "shop", "pid": 16764,
         "error_severity": "ERROR", "state_code": "57014", "statement": stmt,
         "message": "canceling statement due to statement timeout", "application_name": "checkout_api"}
    write(tmp_path, "postgresql.json", json.dumps(j) + "\n{not json\n")
    problems = Problems()
    (e2,) = iter_events(tmp_path / "postgresql.json", problems=problems)
    assert (e2.kind, e2.statement, e2.ts) == ("statement_timeout", stmt, e.ts)
    assert "malformed jsonlog line" in problems.lines()[0]


def test_folder_with_three_formats_reads_one(tmp_path):
    write(tmp_path, "postgresql.log", STDERR)
    lines = [ln for ln in STDERR.splitlines() if "FATAL" in ln]
    rows = [[ln[:27], "postgres", "shop", "1", "", "", "", "", "", "", "", "FATAL", "53300",
             "sorry, too many clients already"] + [""] * 9 for ln in lines[:1]]
    with open(tmp_path / "postgresql.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    problems = Problems()
    events = list(iter_events(tmp_path, problems=problems))
    assert count_kinds(events) == {"too_many_connections": 1}
    assert any("same log in another format (stderr)" in line for line in problems.lines())


def test_rotated_gzip_glob_in_time_order_and_window(tmp_path):
    lines = STDERR.splitlines(True)
    first, second = "".join(lines[:10]), "".join(lines[10:])
    write(tmp_path, "postgresql-2.log", second)  # names sort the wrong way round: order comes from the times
    with gzip.open(tmp_path / "postgresql-1.log.gz", "wt") as f:
        f.write(first)
    events = list(iter_events(str(tmp_path / "postgresql-*"), prefix=PREFIX))
    assert count_kinds(events) == KINDS
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    window = list(iter_events(tmp_path, prefix=PREFIX, since="2026-12-01T09:44:34.5Z",
                              until=datetime(2026, 12, 1, 9, 44, 36, tzinfo=timezone.utc)))
    assert [e.kind for e in window] == ["deadlock", "temp_file", "too_many_connections", "checkpoint",
                                         "slow_statement"]


def test_damage_is_reported_not_raised(tmp_path):
    whole = gzip.compress(STDERR.encode() * 50)
    write(tmp_path, "cut.log.gz", whole[: len(whole) // 2], mode="b")
    write(tmp_path, "notes.txt", "shopping list\n- milk\n- eggs\n")
    write(tmp_path, "blob.bin", os.urandom(64) + b"\x00" * 64, mode="b")
    problems = Problems()
    events = list(iter_events([tmp_path / "cut.log.gz", tmp_path / "notes.txt", tmp_path / "blob.bin"],
                              prefix=PREFIX, problems=problems))
    assert events, "the events before the damage are read"
    text = "\n".join(problems.lines())
    assert "truncated or corrupt compressed file" in text
    assert "notes.txt: not a PostgreSQL log" in text
    assert "blob.bin: not a PostgreSQL log" in text
    mixed = STDERR.replace("2026-12-01 09:44:35.017", "garbage here\n2026-12-01 09:44:35.017")
    problems = Problems()
    assert count_kinds(iter_events(write(tmp_path, "m.log", mixed), prefix=PREFIX, problems=problems)) == KINDS
    assert problems.lines() == [f"{tmp_path / 'm.log'}: line not in the log_line_prefix format (line 16)"]
    with pytest.raises(LogSourceError, match="does not exist"):
        list(iter_events(tmp_path / "nope.log"))


def supabase_rows():
    """What the Logs Explorer downloads for Postgres logs: `timestamp` (ISO 8601 UTC, or epoch microseconds in
    older exports), `event_message` (the log line), and the parsed fields where the query selected them."""
    return [
        {"timestamp": "2026-12-01T09:44:35.017000", "event_message": "sorry, too many clients already",
         "error_severity": "FATAL", "user_name": "authenticator", "sql_state_code": "53300"},
        {"timestamp": 1796118273762000, "event_message":
            "2026-12-01 09:44:33.762 UTC [16762] postgres@postgres ERROR:  canceling statement due to statement "
            "timeout", "metadata": [{"parsed": [{"user_name": "postgres", "application_name": "postgrest"}]}]},
    ]


def test_supabase_export_csv_and_json(tmp_path):
    rows = supabase_rows()
    write(tmp_path, "export.json", json.dumps(rows))
    with open(tmp_path / "export.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["timestamp", "event_message", "error_severity", "user_name",
                                          "sql_state_code"])
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in w.fieldnames} for r in rows)
    for name in ("export.json", "export.csv"):
        problems = Problems()
        events = list(iter_events(tmp_path / name, problems=problems))
        assert not problems, problems.lines()
        assert [e.kind for e in events] == ["statement_timeout", "too_many_connections"]  # sorted by time
        assert events[0].ts == datetime(2026, 12, 1, 9, 44, 33, 762000, tzinfo=timezone.utc)
        assert events[1].user == "authenticator"
    (e,) = [e for e in iter_events(tmp_path / "export.json") if e.kind == "statement_timeout"]
    assert e.application == "postgrest"


def test_unknown_format_is_a_usage_error(tmp_path):
    with pytest.raises(LogSourceError, match="unknown log format"):
        list(iter_events(write(tmp_path, "a.log", STDERR), fmt="journald"))
