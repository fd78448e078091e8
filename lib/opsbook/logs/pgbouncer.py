"""PgBouncer's own log ("2018-09-12 16:00:00.123 UTC 1234 LOG C-0x...: db/user@host:port message", Debian's
1.18 and later with the pid in brackets): one event a line, the client's database, user and address taken from it."""
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
# a client whose database or user PgBouncer does not know is logged "(nodb)/(nouser)"; its login line names them
UNKNOWN = ("(nodb)", "(nouser)")
ASKED = re.compile(r"login (?:attempt|failed): db=(?P<database>\S+) user=(?P<user>\S+)")


def looks_like(line: str) -> bool:
    """One line of PgBouncer's log (its severity is followed by a space, PostgreSQL's by a colon)."""
    return LINE.match(line) is not None


def read_pgbouncer(f: TextIO, source: str, problems, clock) -> Iterator[Event]:
    match, peer = LINE.match, PEER.match
    asked: dict[str, tuple[str, str]] = {}  # "C-0x...: (nodb)/app@host:port" -> what its login asked for
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
            database, user, client = p.group("database"), p.group("user"), p.group("client")
            client = client.strip("[]") if client.startswith("[") else host(client)
            if p.group("side") == "S":  # a server connection: the address is the server's, not a client's
                client = None
            if database in UNKNOWN or user in UNKNOWN:
                key = text[:p.start("message")]
                login = ASKED.match(p.group("message"))
                if login:
                    if len(asked) > 1000:  # such clients are few and short-lived: forget the old ones
                        asked.clear()
                    asked[key] = login.group("database", "user")
                known = asked.get(key, (None, None))
                database = known[0] if database in UNKNOWN else database
                user = known[1] if user in UNKNOWN else user
            text = p.group("message")
        yield Event(ts, m.group("severity"), text, user=user, database=database, client=client,
                    pid=int(m.group("bpid") or m.group("pid")), source=source, line=n)
