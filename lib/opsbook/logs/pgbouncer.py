"""PgBouncer's own log ("2018-09-12 16:00:00.123 UTC 1234 LOG C-0x...: db/user@host:port message", since 1.21
with the pid in brackets): one event a line, the client's database, user and address taken from it."""
from __future__ import annotations

import re
from typing import Iterator, TextIO

from .event import Event
from .records import host
from .timeparse import BadTimestamp

LINE = re.compile(r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?"
                  r"(?: [A-Za-z][A-Za-z0-9+/_-]*|[ ]?[+-]\d\d(?::?\d\d)?)?)"
                  r" (?:\[(?P<bpid>\d+)\]|(?P<pid>\d+)) (?P<severity>LOG|WARNING|ERROR|FATAL|NOISE|DEBUG|STATS) "
                  r"(?P<message>.*)", re.S)
# C-0x...: a client connection, S-0x...: a server one; the address is host:port, unix(pid):port or [v6]:port
PEER = re.compile(r"(?P<side>[CS])-0x[0-9a-f]+: (?P<database>[^/\s]*)/(?P<user>[^@\s]*)@(?P<client>\S*?)"
                  r"(?::\d+)? (?P<message>.*)", re.S)


def looks_like(line: str) -> bool:
    """One line of PgBouncer's log (its severity is followed by a space, PostgreSQL's by a colon)."""
    return LINE.match(line) is not None


def read_pgbouncer(f: TextIO, source: str, problems, clock) -> Iterator[Event]:
    match, peer = LINE.match, PEER.match
    for n, line in enumerate(f, 1):
        m = match(line)
        if m is None:
            if line.strip():
                problems.add(source, "line not in PgBouncer's log format", n)
            continue
        try:
            ts = clock(m.group("ts"))
        except BadTimestamp as e:
            problems.add(source, f"bad timestamp: {e}", n)
            continue
        text = m.group("message").rstrip("\n")
        user = database = client = None
        p = peer(text)
        if p:
            database, user, client, text = p.group("database"), p.group("user"), p.group("client"), p.group("message")
            client = client.strip("[]") if client.startswith("[") else host(client)
        yield Event(ts, m.group("severity"), text, user=user, database=database, client=client,
                    pid=int(m.group("bpid") or m.group("pid")), source=source, line=n)
