"""Big logs by seeking: a window of a log of tens of MB is read from a record start found by binary search on the
records' times (stderr, csvlog, jsonlog), with the same events as a full scan filtered to the window, and only the
window plus a bounded margin parsed: multi-line messages, lines out of order by a few ms at the window's edges,
and csv fields holding whole fake rows on new lines."""
from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from opsbook.logs import Problems, iter_events, reader, seek

START = datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
STEP = timedelta(milliseconds=7)
END = START + timedelta(minutes=12)  # about 100,000 records, 20-30 MB in each format
# the window's first and last records are each written after a record 7 ms later than they (see _records)
SINCE, UNTIL = START + 51433 * STEP, START + 60004 * STEP
PREFIX = "%m [%p] %q%u@%d app=%a "
SQL = "SELECT o.id, o.total\n    FROM orders o\n   WHERE o.created_at > now() - interval '1 day'"
FAKE_DAY = START + timedelta(minutes=6, seconds=30)  # a fake row's time: inside the window


def _stamp(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} UTC"


def _records():
    """(ts, pid, severity, message, attached) without end: the records of a busy server, in order but for pairs
    swapped by 7 ms around the window's edges."""
    edges = [(SINCE - timedelta(seconds=2), SINCE + timedelta(seconds=2)),
             (UNTIL - timedelta(seconds=2), UNTIL + timedelta(seconds=2))]
    i = 0
    while True:
        ts = START + i * STEP
        if any(lo <= ts <= hi for lo, hi in edges) and i % 10 in (3, 4):
            ts = START + (i + (1 if i % 10 == 3 else -1)) * STEP  # this pair is written out of order
        pid = 10000 + i % 700
        kind = i % 6
        if kind == 0:
            yield ts, pid, "LOG", f"duration: {i % 900 + 0.5:.3f} ms  statement: {SQL}", []
        elif kind == 1:
            yield ts, pid, "ERROR", "canceling statement due to statement timeout", [("STATEMENT", SQL)]
        elif kind == 2:
            # a statement carrying whole fake records on their own lines, as any client may send
            fake = f"{_stamp(FAKE_DAY)} [4242] x@y app=z FATAL:  sorry, too many clients already"
            yield ts, pid, "LOG", f"statement: SELECT 1 /*\n{fake}\n*/", []
        else:
            yield ts, pid, "LOG", f"connection authorized: user=app database=shop application_name=api{i % 5}", []
        i += 1


def write_stderr(path) -> None:
    with open(path, "w") as f:
        for ts, pid, sev, msg, att in _records():
            if ts > END:
                return
            head = f"{_stamp(ts)} [{pid}] app@shop app=api "
            f.write(f"{head}{sev}:  " + msg.replace("\n", "\n\t") + "\n")
            for s, t in att:
                f.write(f"{head}{s}:  " + t.replace("\n", "\n\t") + "\n")


def _fake_csv_rows() -> str:
    # whole csvlog rows without a quote (so they stay whole inside a quoted field), timed inside the window
    row = (f"{_stamp(FAKE_DAY)},x,y,4242,[local],6b0.1,1,,{_stamp(FAKE_DAY)},3/7,0,PANIC,XX000,fake panic,,,,,,,,,"
           "z,client backend,,0")
    return "\n".join([row] * 3)


def _lit(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'  # how PostgreSQL writes a text field (appendCSVLiteral)


def write_csvlog(path) -> None:
    fake = _fake_csv_rows()
    with open(path, "w") as f:
        for i, (ts, pid, sev, msg, att) in enumerate(_records()):
            if ts > END:
                return
            if "/*" in msg:
                msg = f"statement: SELECT 1 /*\n{fake}\n*/"
            statement = dict(att).get("STATEMENT")
            f.write(f"{_stamp(ts)},{_lit('app')},{_lit('shop')},{pid},{_lit('10.0.0.7:51234')},6b0e{pid:x}.1,{i},"
                    f"{_lit('SELECT')},{_stamp(START)},3/7,0,{sev},{'57014' if sev == 'ERROR' else '00000'},"
                    f"{_lit(msg)},,,,,,{_lit(statement) if statement else ''},,,{_lit('api')},"
                    f"{_lit('client backend')},,0\n")


def write_jsonlog(path) -> None:
    with open(path, "w") as f:
        for ts, pid, sev, msg, att in _records():
            if ts > END:
                return
            d = {"timestamp": _stamp(ts), "user": "app", "dbname": "shop", "pid": pid, "error_severity": sev,
                 "message": msg, "application_name": "api"}
            d.update({k.lower(): v for k, v in att})
            f.write(json.dumps(d) + "\n")


WRITERS = {"log": (write_stderr, PREFIX), "csv": (write_csvlog, None), "json": (write_jsonlog, None)}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seek")
    for ext, (writer, _) in WRITERS.items():
        writer(folder / f"postgresql.{ext}")
    return folder


class Meter:
    """What the reader read: events parsed (before the window filter) and bytes read by the search."""

    def __init__(self, monkeypatch):
        self.parsed = self.probed = 0
        self.starts: list[int] = []
        real_reader_for, real_start, real_pread = reader.reader_for, seek.window_start, os.pread

        def reader_for(lf, clock):
            read = real_reader_for(lf, clock)

            def counted(*a):
                for e in read(*a):
                    self.parsed += 1
                    yield e
            return counted

        def window_start(*a, **kw):
            self.starts.append(real_start(*a, **kw))
            return self.starts[-1]

        def pread(fd, n, offset):
            data = real_pread(fd, n, offset)
            self.probed += len(data)
            return data

        monkeypatch.setattr(reader, "reader_for", reader_for)
        monkeypatch.setattr(seek, "window_start", window_start)
        monkeypatch.setattr(os, "pread", pread)


def _comparable(events) -> list[dict]:
    out = []
    for e in events:
        d = e.as_dict()
        d.pop("line")  # a file read from its middle has no line numbers
        out.append(d)
    return out


@pytest.mark.parametrize("ext", ["log", "csv", "json"])
def test_a_window_reads_its_part_and_finds_the_same_events(logs, ext, monkeypatch):
    path = logs / f"postgresql.{ext}"
    prefix = WRITERS[ext][1]
    full = [e for e in iter_events(path, prefix=prefix) if SINCE <= e.ts <= UNTIL]
    meter = Meter(monkeypatch)
    problems = Problems()
    window = list(iter_events(path, prefix=prefix, since=SINCE, until=UNTIL, problems=problems))
    assert not problems, problems.lines()
    assert _comparable(window) == _comparable(full)
    assert len(window) > 8000  # a minute of records, one each 7 ms
    assert all(e.pid != 4242 and e.severity != "PANIC" for e in window)  # no fake record was read as one
    assert [e.ts for e in window] == sorted(e.ts for e in window)
    # the window's minute, seek.MARGIN before it and the reorder buffer after it: not the file's 12 minutes
    per_minute = timedelta(minutes=1) / STEP
    assert meter.starts and meter.starts[0] > 0
    assert meter.parsed <= len(window) + per_minute * seek.MARGIN / timedelta(minutes=1) + 2 * reader.REORDER + 2000
    assert meter.probed < 4 << 20  # the binary search read a few blocks, not the file


@pytest.mark.parametrize("ext", ["log", "csv", "json"])
def test_the_window_edges_keep_lines_out_of_order(logs, ext):
    # in the file, the window's first record comes after one 7 ms later, and its last one before one 7 ms earlier
    path = logs / f"postgresql.{ext}"
    text = path.read_text()
    first, second = text.index(_stamp(SINCE)), text.index(_stamp(SINCE + STEP))
    last, before_last = text.index(_stamp(UNTIL)), text.index(_stamp(UNTIL - STEP))
    assert second < first and last < before_last
    window = list(iter_events(path, prefix=WRITERS[ext][1], since=SINCE, until=UNTIL))
    assert (window[0].ts, window[1].ts) == (SINCE, SINCE + STEP)
    assert (window[-2].ts, window[-1].ts) == (UNTIL - STEP, UNTIL)


def test_a_record_start_in_a_csv_field_holding_fake_rows(logs):
    # a probe point just inside a quoted field whose lines are whole fake rows: the start found is the next real
    # record, after the field closes
    path = logs / "postgresql.csv"
    data = path.read_bytes()[:2_000_000]
    fake = data.index(b"\n" + _stamp(FAKE_DAY).encode()) + 1
    fd = os.open(path, os.O_RDONLY)
    try:
        start = seek.csv_record_start(fd, fake, len(data))
    finally:
        os.close(fd)
    assert start is not None and start > fake
    row = next(csv.reader([data[start:data.index(b"\n", start)].decode()]))
    assert row[3] != "4242" and row[1] == "app"
    closing = data.index(b'*/"', fake)
    assert start == data.index(b"\n", closing) + 1


def test_a_compressed_file_is_read_from_its_start_and_says_so(logs, tmp_path):
    gz = tmp_path / "postgresql.csv.gz"
    with open(logs / "postgresql.csv", "rb") as src, gzip.open(gz, "wb", compresslevel=1) as out:
        shutil.copyfileobj(src, out)
    problems = Problems()
    window = list(iter_events(gz, since=SINCE, until=UNTIL, problems=problems))
    assert not problems
    assert "read from its start" in problems.said[str(gz)]
    assert len(window) > 8000 and window[0].line is not None


def test_a_small_file_is_read_whole_with_its_line_numbers(tmp_path):
    path = tmp_path / "small.log"
    path.write_text(f"{_stamp(SINCE)} [1] a@b app=c LOG:  statement: SELECT 1\n"
                    f"{_stamp(UNTIL)} [1] a@b app=c LOG:  statement: SELECT 2\n")
    events = list(iter_events(path, prefix=PREFIX, since=SINCE))
    assert [e.line for e in events] == [1, 2]


@pytest.mark.parametrize("ext", ["log", "csv"])
def test_a_post_mortem_reads_its_window_and_a_baseline_of_as_long(logs, ext, monkeypatch):
    """Failed before: the post-mortem read the log from 7 days before the window (its error baseline), so a window
    of a big day read the whole day up to it. Now it reads the window, and the baseline from samples of as long."""
    from opsbook.incident.postmortem.evidence import baseline_spans, read_log
    from opsbook.incident.postmortem.window import Window

    path = logs / f"postgresql.{ext}"
    window = Window(SINCE, UNTIL, timedelta(0))
    in_window = sum(1 for e in iter_events(path, prefix=WRITERS[ext][1]) if SINCE <= e.ts <= UNTIL)
    meter = Meter(monkeypatch)
    ev = read_log(path, window, prefix=WRITERS[ext][1])
    assert sum(ev.padded_counts.values()) == in_window and not ev.problems, ev.problems
    per_minute = timedelta(minutes=1) / STEP
    margins = 2 * (per_minute * seek.MARGIN / timedelta(minutes=1) + 2 * reader.REORDER + 2000)
    assert meter.parsed <= 2 * in_window + margins  # the window and as long before it: not the 6 minutes before
    assert meter.parsed < 51433  # the records before the window's start
    # the baseline: errors (one record in six) over the minute before the window, sampled, not guessed
    assert baseline_spans(window, 7)[0] == (SINCE - (UNTIL - SINCE), SINCE)
    assert ev.baseline_minutes == pytest.approx((UNTIL - SINCE) / timedelta(minutes=1), rel=0.01)
    assert ev.baseline_errors == pytest.approx(ev.baseline_minutes * per_minute / 6, rel=0.02)
