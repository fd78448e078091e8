"""Queries: the statements that cost the most, from pg_stat_statements in whatever schema it lives."""
from __future__ import annotations

import re

from ..database import sql as sqlfiles
from ..core.errors import SkipCheck
from ..core.findings import PARTIAL, Finding, Severity, grade
from .activity import hidden_finding, visible
from .registry import Check, CheckContext, Threshold, register
from .standby import QUERY as STANDBY, of_session

INSTALL_HOW = ("add pg_stat_statements to shared_preload_libraries, restart, then CREATE EXTENSION "
               "pg_stat_statements (Supabase: Database > Extensions, schema extensions)")


def install_how(db) -> str:
    """INSTALL_HOW, or on a standby: the extension is created on the primary, the library loaded on both."""
    standby = of_session(db)
    if standby is None:
        return INSTALL_HOW
    return (f"on {standby.primary}: add pg_stat_statements to shared_preload_libraries, restart, then CREATE "
            "EXTENSION pg_stat_statements (it replicates here). This standby counts the statements it serves "
            "only with the library in its own shared_preload_libraries and a restart").replace(";", ",")


def layout_version(extversion: str) -> int:
    """The server_version_num whose statements.sql variant matches the extension's columns.

    Columns follow the extension's version, not the server's: a cluster upgraded without
    `ALTER EXTENSION pg_stat_statements UPDATE` keeps the old names (heroku pg-extras #188).
    1.8 (PostgreSQL 13) renamed total_time to total_exec_time; 1.11 (17) split blk_read_time.
    """
    major, _, minor = extversion.partition(".")
    v = (int(major), int(minor or 0))
    return 170000 if v >= (1, 11) else 130000 if v >= (1, 8) else 0


OWN_MARGIN = 4  # statements read per one kept: room for opsbook's own, left out afterwards


def statements(ctx: CheckContext, top_n: int | None = None):
    """Top statements of this database by total and by mean execution time."""
    ext = ctx.db.fetch("queries/extension")
    if ext.empty:
        raise SkipCheck(f"pg_stat_statements is not installed in this database; {install_how(ctx.db)}")
    row = ext.iloc[0]
    if not row["schema_usage"]:
        raise SkipCheck(f"{PARTIAL}: pg_stat_statements is installed in schema {row['schema_name']}, which this role "
                        f"may not use; GRANT USAGE ON SCHEMA {row['schema_ident']} TO <monitoring role>")
    version = min(ctx.db.server_version_num, layout_version(row["extversion"]))
    # The view's name is spliced in as an identifier the server quoted itself (quote_ident in queries/extension).
    text = sqlfiles.load("queries/statements", version).replace("{{pgss}}", f"{row['schema_ident']}.pg_stat_statements")
    top_n = int(top_n or ctx.params.get("top_statements") or 20)
    withheld = list(row["unconvertible_databases"])  # a text of theirs would raise an ERROR here: read none
    # opsbook's own catalog reads can fill the top ranks of a quiet database: read more, leave them out, then rank
    df = ctx.db.query(text, _name="queries/statements", top_n=top_n * OWN_MARGIN, with_text=not withheld)
    df["query"] = df["query"].fillna("")
    mine = opsbook_own(df)
    df = df[~mine].reset_index(drop=True)
    if len(df):
        keep = (df["total_exec_ms"].rank(method="min", ascending=False) <= top_n) | \
            (df["mean_exec_ms"].rank(method="min", ascending=False) <= top_n)
        df = df[keep].reset_index(drop=True)
    df.attrs.update(schema=row["schema_name"], extversion=row["extversion"], own_excluded=int(mine.sum()),
                    texts_withheld=withheld)
    return df


def opsbook_own(df):
    """Rows that are opsbook's own work, not the application's: its catalog queries (pg_stat_statements keeps
    their text from the first keyword, parameters as $n: matched by the start of each of opsbook's SQL files)
    and pg_dump's `COPY ... TO stdout` (a backup, taken by opsbook or anyone)."""
    import re  # noqa: PLC0415

    prefixes = _own_prefixes()
    # PostgreSQL 13-17 keep a single statement's leading comments (18 cuts them): match after them
    texts = df["query"].fillna("").map(lambda q: " ".join(_LEADING_COMMENTS.sub("", q).split()))
    own = texts.map(lambda q: any(q.startswith(p) for p in prefixes))
    dump = texts.str.contains(r"^COPY\s.+\sTO\s+stdout", flags=re.I, regex=True)
    marked = texts.str.startswith(OWN_MARK)  # statements opsbook builds at run time (row counts), only as it writes them
    return own | dump | marked


# the start of every statement opsbook builds at run time (recovery's row counts): matched as a prefix only, so an
# application cannot hide a statement of its own by writing the marker in a comment somewhere
OWN_MARK = "SELECT /* opsbook */ count(*) FROM "
_LEADING_COMMENTS = re.compile(r"\A(?:\s*(?:--[^\n]*(?:\n|\Z)|/\*.*?\*/))*", re.S)
_PREFIXES: list[str] = []
MIN_PREFIX = 24  # shorter beginnings ("SELECT 1") could be anyone's


def _own_prefixes() -> list[str]:
    """The start of every opsbook SQL file as pg_stat_statements shows it: comments gone, whitespace collapsed,
    cut before the first parameter, placeholder or constant (those read $1, $2 there)."""
    import re  # noqa: PLC0415

    if not _PREFIXES:
        for versions in sqlfiles.catalogue().values():
            for path in versions.values():
                body = re.sub(r"--[^\n]*", " ", path.read_text(encoding="utf-8"))
                body = " ".join(body.split())
                cut = re.search(r"(?<!:):[a-z_]|\{\{|%\(|'|\b\d", body)  # where pg_stat_statements puts $n
                head = body[:cut.start()] if cut else body
                head = head[:80].rstrip()
                if len(head) >= MIN_PREFIX:
                    _PREFIXES.append(head)
    return _PREFIXES


def judge_slow(df, *, warning: float = 100, critical: float = 1000, min_calls: float = 100,
               hog_pct: float = 33, max_findings: float = 5) -> list[Finding]:
    seen = visible(df)
    slow = seen[(seen["calls"] >= min_calls) & (seen["mean_exec_ms"] >= warning)]
    out = []
    for row in slow.sort_values("total_exec_ms", ascending=False).head(int(max_findings)).itertuples():
        sev = grade(row.mean_exec_ms, warning, critical)
        out.append(Finding(
            "queries.slow", sev,
            f"statement averages {row.mean_exec_ms:,.0f} ms over {row.calls:,} calls "
            f"({row.pct_total_time:.0f}% of all execution time)",
            detail=f"max {row.max_exec_ms:,.0f} ms, {row.rows:,} rows, {row.shared_blks_read:,} blocks read from "
                   f"disk, {row.temp_blks_written:,} temp blocks written: {row.query[:400]}",
            objects=[f"queryid {row.queryid}"], value=round(row.mean_exec_ms, 1),
            threshold=critical if sev is Severity.CRITICAL else warning,
            remediation="EXPLAIN (ANALYZE, BUFFERS) this statement with real parameters. A Seq Scan on a big "
                        "table wants an index (CREATE INDEX CONCURRENTLY); stale estimates want ANALYZE; temp "
                        "blocks want more work_mem for that role."))
    if len(slow) > len(out):
        out[-1].detail += f" ({len(slow) - len(out)} more slow statements in the table below.)"
    hogs = seen[(seen["pct_total_time"] >= hog_pct) & (seen["calls"] >= min_calls)
                & ~seen["queryid"].isin(slow["queryid"])]
    for row in hogs.itertuples():
        out.append(Finding(
            "queries.slow", Severity.INFO,
            f"one statement takes {row.pct_total_time:.0f}% of all execution time ({row.calls:,} calls, "
            f"{row.mean_exec_ms:,.1f} ms each)", detail=row.query[:400], objects=[f"queryid {row.queryid}"],
            value=round(row.pct_total_time, 1), threshold=hog_pct,
            remediation="Make it cheaper or call it less (cache, batch). It is where time is easiest to win."))
    if not out:
        out.append(Finding("queries.slow", Severity.OK,
                           f"no statement with {min_calls:,.0f}+ calls averages {warning:,.0f} ms or more "
                           f"({len(seen)} statements looked at)", value=0, threshold=warning))
    return out + hidden_finding("queries.slow", df, "statement texts") + texts_withheld("queries.slow", df)


def texts_withheld(check_id: str, df) -> list[Finding]:
    """A partial-visibility finding when the statements were read without their texts (see queries/extension)."""
    names = df.attrs.get("texts_withheld") or []
    if not names:
        return []
    reason = (f"{PARTIAL}: statement texts not read: the texts of database(s) {', '.join(names)} of this cluster "
              "may not convert into this database's encoding")
    return [Finding(check_id, Severity.INFO, reason, skipped=reason,
                    detail="pg_stat_statements converts the text of every database's statements into this "
                           "database's encoding and fails at the first byte that is not valid here; statements "
                           "are shown by queryid, and opsbook's own could not be told apart.",
                    remediation="Move the cluster's databases to one encoding, UTF8 (dump, CREATE DATABASE ... "
                                "ENCODING 'UTF8', restore).")]


SLOW = register(Check(
    id="queries.slow",
    description="pg_stat_statements (found in any schema; columns of extension 1.8 / PostgreSQL 13 and 1.11 / 17 "
                "handled): statements by mean time, share of total time and calls.",
    data=statements,
    judge=judge_slow,
    thresholds=(
        Threshold("warning", 100, "ms mean execution time", "source guide 001: query performance P95 < 100 ms"),
        Threshold("critical", 1000, "ms mean execution time",
                  "source guides 002/004: average query time > 1 second is a scaling trigger"),
        Threshold("min_calls", 100, "calls", "pghero: slow queries are those over 20 ms with at least 100 calls"),
        Threshold("hog_pct", 33, "% of total execution time",
                  "ruby-pg-extras diagnose: one query taking >= 33% of execution time"),
        Threshold("max_findings", 5, "statements", "opsbook default: the report stays readable"),
    ),
    queries=("queries/extension", "queries/statements", STANDBY),
    runbooks=("incident-triage",),
))
