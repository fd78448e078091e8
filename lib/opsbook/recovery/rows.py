"""One table, backup against live, by key: which rows are missing live, which differ; CSV, SQL script, insert.

Live rows never leave the server as data: only their keys and an md5 of each row are copied (COPY TO STDOUT,
read-only) into a scratch table beside the restored one, and the comparison runs there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .compare import qualified, quote_ident
from .encoding import sql

# Both sides render values as text the same way, whatever the servers' defaults, so equal rows hash equal.
TEXT_SETTINGS = {"TimeZone": "UTC", "DateStyle": "ISO, MDY", "IntervalStyle": "postgres",
                 "extra_float_digits": "3", "bytea_output": "hex"}
LIVE_ROWS = "public.opsbook_live_rows"  # in opsbook's own scratch database; qualified: the path is pg_catalog
DIFF = "public.opsbook_diff"


class KeyColumnError(ValueError):
    """The key the user named does not fit the table."""


@dataclass
class TableInfo:
    schema: str
    name: str
    columns: list[str]
    key: list[str]
    key_source: str  # "primary key" | "key parameter" | ""
    insert_columns: list[str]  # all but generated columns
    overriding: bool  # an identity GENERATED ALWAYS column: INSERT needs OVERRIDING SYSTEM VALUE
    candidates: list[str] = field(default_factory=list)  # unique indexes, shown when there is no key
    policies_would_run: bool = False  # RLS on, and opsbook's role does not bypass it: live rows are not read

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"


def with_schema(table: str) -> str:
    """The name as typed, in public when it names no schema: what the application's default search path finds
    (opsbook's own is pg_catalog)."""
    return table if "." in table or table.startswith('"') else "public." + table


def table_info(session, table: str, key: str | None = None) -> TableInfo | None:
    """The table as live has it; None when it does not exist. `key`: comma-separated columns that identify a row,
    for a table without a primary key (or to use another key)."""
    table = with_schema(table)
    cols = session.fetch("recovery/columns", table=table)
    if cols.empty:
        return None
    schema, name = cols.iloc[0]["schema"], cols.iloc[0]["table"]
    columns = list(cols["column"])
    pk = cols.dropna(subset=["pk_position"]).sort_values("pk_position")
    cands = session.fetch("recovery/unique_keys", table=qualified(schema, name))
    info = TableInfo(schema, name, columns, list(pk["column"]), "primary key" if len(pk) else "",
                     list(cols.loc[~cols["generated"].astype(bool), "column"]),
                     bool((cols["identity"] == "a").any()),
                     [f"{r.index} ({r.columns})" for r in cands.itertuples()],
                     bool(cols.iloc[0]["policies_would_run"]))
    if key:
        named = [c.strip() for c in key.split(",") if c.strip()]
        unknown = [c for c in named if c not in columns]
        if unknown:
            raise KeyColumnError(f"key column(s) {', '.join(unknown)} not in {info.display}; its columns: "
                            f"{', '.join(columns)}")
        info.key, info.key_source = named, "key parameter"
    return info


def referencing(session, info: TableInfo):
    """Foreign keys pointing at the table (a cascade may have deleted rows there too)."""
    return session.fetch("recovery/referencing", table=info.qualified)


def private_file(path, mode: str):
    """Open a new file readable by its owner only (0600): recovered rows hold names, e-mails, phone numbers."""
    import os  # noqa: PLC0415

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when it existed
    return os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))


def prepare(conn) -> None:
    """Text forms both sides agree on: for the transaction where one is open (live: nothing outlives it), else for
    the session (opsbook's own scratch)."""
    from psycopg import pq  # noqa: PLC0415

    local = conn.info.transaction_status != pq.TransactionStatus.IDLE
    for k, v in TEXT_SETTINGS.items():
        conn.execute("SELECT pg_catalog.set_config(%s, %s, %s)", (k, v, local))


def _key_expr(info: TableInfo, alias: str = "t") -> str:
    return "ROW(" + ", ".join(f"{alias}.{quote_ident(c)}" for c in info.key) + ")::text"


def _md5_expr(columns: list[str], alias: str = "t") -> str:
    return "md5(ROW(" + ", ".join(f"{alias}.{quote_ident(c)}" for c in columns) + ")::text)"


def _where(filter_sql: str | None) -> str:
    return f" WHERE ({filter_sql})" if filter_sql else ""


def check_filter(filter_sql: str | None) -> str | None:
    """The filter is one SQL condition; a semicolon would make it more than one statement."""
    if filter_sql and ";" in filter_sql:
        raise ValueError("filter must be a single SQL condition without ';', e.g. created_at >= '2026-11-01'")
    return filter_sql or None


def try_filter(session, info: TableInfo, filter_sql: str | None) -> str | None:
    """Plan the filter on live (EXPLAIN, so nothing is read): its error, one line, or None when it is valid."""
    if not filter_sql:
        return None
    try:
        with session.unit():
            session.raw.execute(sql(session.raw, f"EXPLAIN SELECT 1 FROM {info.qualified} t{_where(filter_sql)}"))
    except Exception as e:  # noqa: BLE001 - a syntax error, an unknown column, no privilege
        orig = getattr(e, "orig", e)
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        return f"filter {filter_sql!r} does not work on {info.display}: {first}"
    return None


@dataclass
class Diff:
    missing: int
    changed: int
    same: int
    new_live: int
    backup_rows: int
    live_rows: int
    duplicate_keys_backup: int
    duplicate_keys_live: int
    compared_columns: list[str]
    columns_only_live: list[str]
    columns_only_backup: list[str]


def diff(live_conn, scratch_conn, info: TableInfo, backup_columns: list[str], filter_sql: str | None) -> Diff:
    """Copy live keys and row hashes into the scratch database, then compare there by key.

    Rows are hashed over the columns both sides have, in live's order, so a column added since the backup does not
    make every row 'changed'.
    """
    cols = [c for c in info.columns if c in backup_columns]
    prepare(live_conn)
    prepare(scratch_conn)
    scratch_conn.execute(f"DROP TABLE IF EXISTS {LIVE_ROWS}, {DIFF}")
    scratch_conn.execute(f"CREATE TABLE {LIVE_ROWS} (key text, row_md5 text)")
    select = f"SELECT {_key_expr(info)}, {_md5_expr(cols)} FROM {info.qualified} t{_where(filter_sql)}"
    with live_conn.cursor().copy(sql(live_conn, f"COPY ({select}) TO STDOUT")) as src, \
            scratch_conn.cursor().copy(f"COPY {LIVE_ROWS} (key, row_md5) FROM STDIN") as dst:
        for block in src:
            dst.write(block)
    scratch_conn.execute(f"CREATE INDEX ON {LIVE_ROWS} (key)")
    scratch_conn.execute(f"ANALYZE {LIVE_ROWS}")
    scratch_conn.execute(sql(scratch_conn,
        f"CREATE TABLE {DIFF} AS SELECT b.key, CASE WHEN l.key IS NULL THEN 'missing live' "
        f"WHEN l.row_md5 IS DISTINCT FROM b.row_md5 THEN 'changed' ELSE 'same' END AS status "
        f"FROM ({select}) AS b (key, row_md5) LEFT JOIN {LIVE_ROWS} l ON l.key = b.key"))
    scratch_conn.execute(f"CREATE INDEX ON {DIFF} (key)")
    counts = dict(scratch_conn.execute(f"SELECT status, count(*) FROM {DIFF} GROUP BY status").fetchall())
    (new_live,) = scratch_conn.execute(
        f"SELECT count(*) FROM {LIVE_ROWS} l WHERE NOT EXISTS (SELECT 1 FROM {DIFF} d WHERE d.key = l.key)").fetchone()
    dup_b, backup_rows = scratch_conn.execute(f"SELECT count(*) - count(DISTINCT key), count(*) FROM {DIFF}").fetchone()
    dup_l, live_rows = scratch_conn.execute(
        f"SELECT count(*) - count(DISTINCT key), count(*) FROM {LIVE_ROWS}").fetchone()
    return Diff(counts.get("missing live", 0), counts.get("changed", 0), counts.get("same", 0), new_live,
                backup_rows, live_rows, dup_b, dup_l, cols, [c for c in info.columns if c not in backup_columns],
                [c for c in backup_columns if c not in info.columns])


def _missing_select(info: TableInfo, columns: list[str], limit: int | None = None, status: str = "missing live") -> str:
    cols = ", ".join(f"t.{quote_ident(c)}" for c in columns)
    lim = f" LIMIT {int(limit)}" if limit else ""
    return (f"SELECT {cols} FROM {info.qualified} t JOIN {DIFF} d ON d.key = {_key_expr(info)} "
            f"WHERE d.status = '{status}' ORDER BY d.key{lim}")


def sample(scratch_conn, info: TableInfo, columns: list[str], status: str, limit: int):
    """Up to `limit` restored rows with that status, as a DataFrame."""
    import pandas as pd  # noqa: PLC0415

    cur = scratch_conn.execute(sql(scratch_conn, _missing_select(info, columns, limit, status)))
    return pd.DataFrame(cur.fetchall(), columns=list(columns))  # not cur.description: SQL_ASCII names are bytes


def changed_versions(live_conn, scratch_conn, info: TableInfo, columns: list[str], limit: int):
    """For up to `limit` changed rows: the backup's version and live's, one above the other."""
    import pandas as pd  # noqa: PLC0415

    backup = sample(scratch_conn, info, columns, "changed", limit)
    if backup.empty:
        return backup
    keys = [k for (k,) in scratch_conn.execute(
        f"SELECT key FROM {DIFF} WHERE status = 'changed' ORDER BY key LIMIT {int(limit)}").fetchall()]
    cols = ", ".join(f"t.{quote_ident(c)}" for c in columns)
    cur = live_conn.execute(sql(live_conn, f"SELECT {cols} FROM {info.qualified} t WHERE {_key_expr(info)} = ANY(%s)"),
                            (keys,))
    live = pd.DataFrame(cur.fetchall(), columns=list(columns))
    differs = _differing_columns(backup, live, info.key)
    backup.insert(0, "version", "backup")
    live.insert(0, "version", "live")
    both = pd.concat([backup, live], ignore_index=True)
    both.insert(1, "differs_in", [differs.get(tuple(r), "") for r in both[info.key].itertuples(index=False)])
    return both.sort_values(info.key + ["version"], kind="stable").reset_index(drop=True)


def _differing_columns(backup, live, key: list[str]) -> dict[tuple, str]:
    """key -> the columns whose values differ between the two versions, as text."""
    lv = {tuple(r[k] for k in key): r for r in live.to_dict("records")}
    out = {}
    for r in backup.to_dict("records"):
        k = tuple(r[c] for c in key)
        other = lv.get(k)
        if other is not None:
            out[k] = ", ".join(c for c in backup.columns if str(r[c]) != str(other.get(c)))
    return out


def write_csv(scratch_conn, info: TableInfo, path) -> int:
    """The missing rows as CSV with a header, values exactly as PostgreSQL writes them. Returns bytes written."""
    size = 0
    with private_file(path, "wb") as f, scratch_conn.cursor().copy(sql(
            scratch_conn, f"COPY ({_missing_select(info, info.insert_columns)}) TO STDOUT (FORMAT csv, HEADER)")) as cp:
        for block in cp:
            f.write(block)
            size += len(block)
    return size


def write_sql(scratch_conn, info: TableInfo, path, header: list[str]) -> int:
    from psycopg.types.string import TextLoader  # noqa: PLC0415

    """An SQL script that inserts the missing rows, one INSERT ... ON CONFLICT DO NOTHING each, in one transaction.
    Values are quoted by PostgreSQL itself (quote_nullable). Returns the number of statements."""
    cols = ", ".join(quote_ident(c) for c in info.insert_columns)
    overriding = " OVERRIDING SYSTEM VALUE" if info.overriding else ""
    values = " || ', ' || ".join(f"quote_nullable(t.{quote_ident(c)})" for c in info.insert_columns)
    prefix = f"INSERT INTO {info.qualified} ({cols}){overriding} VALUES ("
    select = (f"SELECT {values} FROM {info.qualified} t JOIN {DIFF} d ON d.key = {_key_expr(info)} "
              f"WHERE d.status = 'missing live' ORDER BY d.key")
    # SQL_ASCII: the values are bytes of any encoding (latin-1 beside UTF-8); they go into the script as they are,
    # under the client_encoding pg_dump itself writes, so psql sends them back byte for byte
    as_bytes = scratch_conn.info.encoding == "ascii"
    n = 0
    with private_file(path, "wb") as f:
        # one comment line each: a newline in a table name or filter must not end the comment and become SQL
        f.write("".join(f"-- {' '.join(str(line).splitlines())}\n" for line in header).encode())
        f.write(b"SET client_encoding = 'SQL_ASCII';\nBEGIN;\n" if as_bytes else b"BEGIN;\n")
        cur = scratch_conn.cursor()
        if as_bytes:
            cur.adapters.register_loader("text", TextLoader)  # psycopg's own: bytes in a SQL_ASCII database
        with scratch_conn.transaction():  # a cursor of the server's own: the rows stream, whatever their number
            # (declared by hand: psycopg's named cursors decode the query, which SQL_ASCII names do not survive)
            cur.execute(sql(scratch_conn, f"DECLARE opsbook_sql_script NO SCROLL CURSOR FOR {select}"))
            while batch := cur.execute("FETCH 1000 FROM opsbook_sql_script").fetchall():
                for (row,) in batch:
                    f.write(prefix.encode() + (row if as_bytes else row.encode()) + b") ON CONFLICT DO NOTHING;\n")
                n += len(batch)
        f.write(b"COMMIT;\n")
    return n


@dataclass
class Applied:
    mode: str  # applied | failed
    inserted: int
    before: int
    after: int
    message: str


def apply(live_conninfo: str, scratch_conn, info: TableInfo, expected: int, *, statement_timeout_ms: int) -> Applied:
    """Insert the missing rows into the live table in one transaction; commit only if the counts add up.

    Rows travel scratch -> live by COPY into a temporary table, then INSERT ... ON CONFLICT DO NOTHING: live rows
    are never updated or deleted. Before commit: staged == expected, after - before == inserted, and every staged
    key present. Otherwise ROLLBACK, and nothing changed.
    """
    from ..database.session import raw_connect  # noqa: PLC0415

    cols = ", ".join(quote_ident(c) for c in info.insert_columns)
    overriding = " OVERRIDING SYSTEM VALUE" if info.overriding else ""
    match = " AND ".join(f"t.{quote_ident(c)} IS NOT DISTINCT FROM r.{quote_ident(c)}" for c in info.key)
    conn = raw_connect(live_conninfo, read_only=False, autocommit=False, statement_timeout_ms=statement_timeout_ms,
                       lock_timeout_ms=5_000)
    try:
        (before,) = conn.execute(sql(conn, f"SELECT count(*) FROM {info.qualified}")).fetchone()
        conn.execute(sql(conn, f"CREATE TEMP TABLE opsbook_recovered ON COMMIT DROP AS SELECT {cols} FROM "
                               f"{info.qualified} WITH NO DATA"))
        with scratch_conn.cursor().copy(sql(scratch_conn, f"COPY ({_missing_select(info, info.insert_columns)}) "
                                            "TO STDOUT")) as src, \
                conn.cursor().copy(sql(conn, f"COPY opsbook_recovered ({cols}) FROM STDIN")) as dst:
            for block in src:
                dst.write(block)
        (staged,) = conn.execute("SELECT count(*) FROM opsbook_recovered").fetchone()
        inserted = conn.execute(sql(conn, f"INSERT INTO {info.qualified} ({cols}){overriding} SELECT {cols} FROM "
                                          "opsbook_recovered ON CONFLICT DO NOTHING")).rowcount
        (after,) = conn.execute(sql(conn, f"SELECT count(*) FROM {info.qualified}")).fetchone()
        (present,) = conn.execute(sql(conn, f"SELECT count(*) FROM opsbook_recovered r WHERE EXISTS "
                                            f"(SELECT 1 FROM {info.qualified} t WHERE {match})")).fetchone()
        problems = []
        if staged != expected:
            problems.append(f"staged {staged} rows, expected {expected}")
        if after - before != inserted:
            problems.append(f"count went {before} -> {after} but {inserted} were inserted (concurrent writes?)")
        if present != staged:
            problems.append(f"{staged - present} recovered key(s) not present after the insert")
        if problems:
            conn.rollback()
            return Applied("failed", 0, before, before, "; ".join(problems) + ". Rolled back: nothing changed.")
        conn.commit()
        skipped = staged - inserted
        note = f"; {skipped} already present (ON CONFLICT DO NOTHING)" if skipped else ""
        return Applied("applied", inserted, before, after,
                       f"one transaction: {inserted} inserted{note}; count {before} -> {after}; all {staged} "
                       "recovered keys present; committed")
    except Exception as e:  # noqa: BLE001 - any failure: roll back and say why
        from ..core.redact import redact_sql  # noqa: PLC0415

        conn.rollback()
        return Applied("failed", 0, 0, 0, redact_sql(" ".join(f"{type(e).__name__}: {e}".split()))[:400]
                       + ". Rolled back: nothing changed.")
    finally:
        conn.close()
