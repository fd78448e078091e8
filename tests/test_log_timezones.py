"""Logs in local time: a real server with log_timezone Europe/Paris read in its three formats, and lines in the
exact formats PostgreSQL writes for the dates a test cannot make a server write (summer, winter, the repeated
autumn hour), read with and without the server's log_timezone."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import psycopg
import pytest

from conftest import _server
from opsbook.logs import LogSourceError, Problems, check_log_timezone, iter_events, show_timezone

PREFIX = "%m [%p] "
MARKER = "opsbook-test-tz-marker"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def read(tmp_path, name, text, **kw):
    path = tmp_path / name
    path.write_text(text)
    problems = Problems()
    events = list(iter_events(path, problems=problems, **kw))
    return [e.ts.astimezone(timezone.utc) for e in events], problems


def stderr(stamps):
    return "".join(f"{s} [4242] LOG:  checkpoint starting: time {i}\n" for i, s in enumerate(stamps))


def csvlog(stamps):
    return "".join(f'{s},,,4242,,6751a1b2.1092,{i},,{s[:19]} {s.split()[-1]},,0,LOG,00000,"checkpoint {i}",'
                   f',,,,,,,,"",checkpointer,,0\n' for i, s in enumerate(stamps))


def jsonlog(stamps):
    return "".join(json.dumps({"timestamp": s, "pid": 4242, "session_id": "6751a1b2.1092", "line_num": i,
                               "error_severity": "LOG", "message": f"checkpoint {i}",
                               "backend_type": "checkpointer", "query_id": 0}) + "\n" for i, s in enumerate(stamps))


WRITERS = {"log": stderr, "csv": csvlog, "json": jsonlog}


@pytest.mark.parametrize("ext", ["log", "csv", "json"])
@pytest.mark.parametrize("log_timezone, stamp, expected", [
    ("Europe/Paris", "2026-07-01 14:00:00.250 CEST", utc(2026, 7, 1, 12, 0, 0, 250000)),
    ("Europe/Paris", "2026-12-01 14:00:00.250 CET", utc(2026, 12, 1, 13, 0, 0, 250000)),
    ("America/New_York", "2026-07-01 08:00:00.000 EDT", utc(2026, 7, 1, 12)),
    ("America/Los_Angeles", "2026-12-01 04:00:00.000 PST", utc(2026, 12, 1, 12)),
    ("Europe/Moscow", "2026-07-01 15:00:00.000 MSK", utc(2026, 7, 1, 12)),
    ("Europe/London", "2026-07-01 13:00:00.000 BST", utc(2026, 7, 1, 12)),
    ("Asia/Tokyo", "2026-07-01 21:00:00.000 JST", utc(2026, 7, 1, 12)),
    ("Australia/Sydney", "2026-12-01 23:00:00.000 AEDT", utc(2026, 12, 1, 12)),
])
def test_local_time_abbreviations_read_as_utc_with_and_without_log_timezone(tmp_path, ext, log_timezone, stamp,
                                                                          expected):
    for tz in (log_timezone, None):
        (ts,), problems = read(tmp_path, f"postgresql.{ext}", WRITERS[ext]([stamp]), log_timezone=tz,
                               prefix=PREFIX if ext == "log" else None)
        assert not problems, problems.lines()
        assert ts == expected, (tz, stamp)


AUTUMN = ["2026-10-25 01:59:59.900 CEST", "2026-10-25 02:30:00.123 CEST", "2026-10-25 02:59:59.000 CEST",
          "2026-10-25 02:00:01.000 CET", "2026-10-25 02:30:00.123 CET", "2026-10-25 03:00:00.000 CET"]
AUTUMN_UTC = [utc(2026, 10, 24, 23, 59, 59, 900000), utc(2026, 10, 25, 0, 30, 0, 123000), utc(2026, 10, 25, 0, 59, 59),
              utc(2026, 10, 25, 1, 0, 1), utc(2026, 10, 25, 1, 30, 0, 123000), utc(2026, 10, 25, 2)]


@pytest.mark.parametrize("ext", ["log", "csv", "json"])
@pytest.mark.parametrize("tz", ["Europe/Paris", None])
def test_the_repeated_autumn_hour_is_read_in_order(tmp_path, ext, tz):
    stamps, problems = read(tmp_path, f"postgresql.{ext}", WRITERS[ext](AUTUMN), log_timezone=tz,
                            prefix=PREFIX if ext == "log" else None)
    assert not problems, problems.lines()
    assert stamps == AUTUMN_UTC


def test_a_zone_whose_abbreviation_does_not_change_folds_by_order(tmp_path):
    # Europe/Moscow went back from +04 to +03 on 2014-10-26 02:00, printing MSK both times: only order tells
    stamps = ["2014-10-26 01:30:00.000 MSK", "2014-10-26 01:59:00.000 MSK", "2014-10-26 01:10:00.000 MSK",
              "2014-10-26 01:30:00.000 MSK"]
    got, problems = read(tmp_path, "postgresql.log", stderr(stamps), log_timezone="Europe/Moscow", prefix=PREFIX)
    assert not problems, problems.lines()
    assert got == [utc(2014, 10, 25, 21, 30), utc(2014, 10, 25, 21, 59), utc(2014, 10, 25, 22, 10),
                   utc(2014, 10, 25, 22, 30)]


@pytest.mark.parametrize("abbr, log_timezone, expected", [("IST", "Asia/Kolkata", utc(2026, 12, 1, 6, 30)),
                                                          ("IST", "Asia/Jerusalem", utc(2026, 12, 1, 10)),
                                                          ("CST", "America/Chicago", utc(2026, 12, 1, 18)),
                                                          ("CST", "Asia/Shanghai", utc(2026, 12, 1, 4))])
def test_an_ambiguous_abbreviation_is_read_with_log_timezone_and_reported_without(tmp_path, abbr, log_timezone,
                                                                                  expected):
    stamp = f"2026-12-01 12:00:00.000 {abbr}"
    (ts,), problems = read(tmp_path, "postgresql.csv", csvlog([stamp]), log_timezone=log_timezone)
    assert not problems and ts == expected
    got, problems = read(tmp_path, "postgresql.csv", csvlog([stamp]))
    assert got == []
    (line,) = problems.lines()
    assert f"time zone {abbr} is ambiguous" in line and "log_timezone" in line


def test_an_unknown_log_timezone_is_a_one_line_error(tmp_path):
    (tmp_path / "postgresql.log").write_text(stderr(["2026-07-01 14:00:00.250 CEST"]))
    with pytest.raises(LogSourceError, match="not in the tz database"):
        list(iter_events(tmp_path / "postgresql.log", log_timezone="Mars/Olympus"))
    with pytest.raises(LogSourceError, match=r"^log_timezone '\.\./etc' is not in the tz database$"):
        check_log_timezone("../etc")
    assert check_log_timezone("Europe/Paris") == "Europe/Paris" and check_log_timezone("") is None


@pytest.fixture(scope="module")
def paris(tmp_path_factory):
    server = _server(tmp_path_factory, "tz-paris", log_timezone="'Europe/Paris'", logging_collector="on",
                     log_destination="'stderr,csvlog,jsonlog'", log_directory="'log'",
                     log_filename="'postgresql.log'", log_line_prefix=f"'{PREFIX}'")
    yield server
    server.stop()


def test_a_real_server_in_europe_paris_is_read_in_every_format(paris):
    before = datetime.now(timezone.utc)
    with psycopg.connect(paris.conninfo(), autocommit=True) as c:
        c.execute(f"DO $$BEGIN RAISE LOG '{MARKER}'; END$$")
        assert show_timezone(c) == "Europe/Paris"
    after = datetime.now(timezone.utc)
    log_dir = paris.data_dir / "log"
    files = {ext: log_dir / f"postgresql.{ext}" for ext in ("log", "csv", "json")}
    deadline = time.monotonic() + 20
    while not all(f.exists() and MARKER in f.read_text(errors="replace") for f in files.values()):
        assert time.monotonic() < deadline, f"{MARKER} never reached the logs in {log_dir}"
        time.sleep(0.05)
    zone = datetime.now(timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).tzname()
    assert f" {zone} [" in files["log"].read_text()  # the server really writes local time
    for tz in ("Europe/Paris", None):
        for ext, f in files.items():
            problems = Problems()
            (e,) = [e for e in iter_events(f, problems=problems, log_timezone=tz, prefix=PREFIX if ext == "log"
                                           else None) if MARKER in e.message]
            assert not problems, (ext, problems.lines())
            assert before.replace(microsecond=0) <= e.ts <= after, (ext, e.ts, before, after)
