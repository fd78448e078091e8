"""Completeness: the restored database against the live one, object by object and table by table."""
from __future__ import annotations

import time
from dataclasses import dataclass

# count(*) reads the whole table; above this many estimated rows both sides are compared by estimate instead.
EXACT_COUNT_MAX_ROWS = 1_000_000
# Two planner estimates (live's, and the scratch database's after ANALYZE) of the same rows differ a little.
ESTIMATE_TOLERANCE = 0.10


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def inventory(session):
    """Every schema object a backup must bring back (sql/backup/objects.sql)."""
    return session.fetch("backup/objects")


def tables(session):
    return session.fetch("backup/tables")


# Per table: its name as the bytes a query must carry (a SQL_ASCII database's names need not be UTF-8), whether
# this role may read it, and whether reading it would run row-level security policies as opsbook. Asked of the
# catalogue first, so that no count meets "permission denied" (an ERROR line in the server's log).
_READABLE = """
SELECT n.nspname AS schema, c.relname AS "table",
       pg_catalog.convert_to(pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                             pg_catalog.pg_client_encoding()) AS name_bytes,
       pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
         AS readable,
       c.relrowsecurity AND NOT me.bypass AS policies_would_run,
       me.role
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT rolname AS role, rolsuper OR rolbypassrls AS bypass FROM pg_roles
            WHERE rolname = current_user) me
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2
"""
NO_SELECT = "not counted: role {role} may not read it (no SELECT on it, or no USAGE on its schema)"
RLS_GUARDED = ("not counted: row-level security is on and this role does not bypass it (its policies would run "
               "with opsbook's privileges)")


def readability(session) -> dict[tuple[str, str], dict]:
    """(schema, table) -> name_bytes, readable, policies_would_run, role; names keyed as the session reads them."""
    df = session.query(_READABLE)
    return {(r.schema, r.table): {"name_bytes": bytes(r.name_bytes), "readable": bool(r.readable),
                                  "policies_would_run": bool(r.policies_would_run), "role": r.role}
            for r in df.itertuples()}


def count_rows(session, table_list, *, exact_max_rows: int = EXACT_COUNT_MAX_ROWS, estimate_from=None,
               live: bool = True):
    """`table_list` with rows (exact count, or the planner's estimate for big tables), `exact`, `count_ms`, `error`.

    `estimate_from` (the live side's table list) decides which tables are too big to count, so both sides of a
    comparison make the same choice. A table we may not read gets an error, not a crash, and is not even tried.
    """
    import psycopg  # noqa: PLC0415

    from .encoding import sql  # noqa: PLC0415

    df = table_list.copy()
    size_by = {}
    if estimate_from is not None:
        size_by = {(r.schema, r.table): r.estimated_rows for r in estimate_from.itertuples()}
    raw = session.raw
    catalogue = readability(session)
    rows, exact, ms, errors = [], [], [], []
    for r in df.itertuples():
        known = catalogue.get((r.schema, r.table))
        why = None
        if known is not None and not known["readable"]:
            why = NO_SELECT.format(role=known["role"])
        elif known is not None and live and known["policies_would_run"]:  # a restored copy runs only its own code
            why = RLS_GUARDED
        if why:
            rows.append(None)
            errors.append(why)
            exact.append(True)
            ms.append(0.0)
            continue
        estimate = size_by.get((r.schema, r.table), r.estimated_rows)
        if estimate is not None and estimate > exact_max_rows:
            rows.append(max(int(r.estimated_rows), 0))
            exact.append(False)
            ms.append(0.0)
            errors.append(None)
            continue
        # the marker keeps these counts out of the statements opsbook tunes and reports (queries.opsbook_own)
        query = (b"SELECT /* opsbook */ count(*) FROM " + known["name_bytes"]) if known is not None \
            else sql(raw, f"SELECT /* opsbook */ count(*) FROM {qualified(r.schema, r.table)}")
        t0 = time.perf_counter()
        try:
            with session.unit():
                n = raw.execute(query).fetchone()[0]
            rows.append(int(n))
            errors.append(None)
        except psycopg.Error as e:  # a timeout, an unscanned materialized view
            rows.append(None)
            errors.append(" ".join(str(e).split())[:200])
        exact.append(True)
        ms.append((time.perf_counter() - t0) * 1000)
    df["rows"], df["exact"], df["count_ms"], df["error"] = rows, exact, ms, errors
    df.attrs["role"] = next((k["role"] for k in catalogue.values()), None)
    return df


def unread(tables) -> list[str]:
    """The tables of a compare_tables() frame live rows were not counted of because this role may not read them."""
    if tables is None or not len(tables):
        return []
    hit = tables[tables["error"].fillna("").str.startswith((NO_SELECT.split("{")[0], RLS_GUARDED))]
    return [f"{r.schema}.{r.table}" for r in hit.itertuples()]


@dataclass
class Completeness:
    objects: object  # DataFrame: kind, schema, name, live, restored, status, definition
    tables: object  # DataFrame: schema, table, live_rows, restored_rows, diff_rows, exact, status

    def summary(self):
        """Per kind: objects live, restored, missing from the restore, only in the backup."""
        o = self.objects
        g = o.groupby("kind")
        out = g.agg(live=("live", "sum"), restored=("restored", "sum")).reset_index()
        out["missing_from_restore"] = g.apply(lambda x: int((x.live & ~x.restored).sum()),
                                              include_groups=False).values
        out["only_in_backup"] = g.apply(lambda x: int((~x.live & x.restored).sum()), include_groups=False).values
        return out.sort_values("kind").reset_index(drop=True)


def compare_objects(live_inv, restored_inv):
    import pandas as pd  # noqa: PLC0415

    key = ["kind", "schema", "name"]
    m = pd.merge(live_inv, restored_inv, on=key, how="outer", suffixes=("_live", "_restored"), indicator=True)
    m["live"] = m["_merge"].isin(["both", "left_only"])
    m["restored"] = m["_merge"].isin(["both", "right_only"])
    m["status"] = m["_merge"].map({"both": "restored", "left_only": "missing from restore",
                                   "right_only": "only in backup"}).astype(str)
    m["definition"] = m["definition_live"].fillna(m["definition_restored"])
    m["valid"] = m["valid_live"].astype("boolean").fillna(True).astype(bool)
    return m[key + ["live", "restored", "status", "valid", "definition"]].sort_values(key).reset_index(drop=True)


def compare_tables(live_counts, restored_counts):
    import pandas as pd  # noqa: PLC0415

    key = ["schema", "table"]
    left = live_counts[key + ["rows", "exact", "size_bytes", "error"]].rename(
        columns={"rows": "live_rows", "size_bytes": "live_size_bytes", "error": "live_error"})
    right = restored_counts[key + ["rows", "size_bytes", "error"]].rename(
        columns={"rows": "restored_rows", "size_bytes": "restored_size_bytes", "error": "restored_error"})
    m = pd.merge(left, right, on=key, how="outer", indicator=True)
    m["exact"] = m["exact"].astype("boolean").fillna(True).astype(bool)

    def status(r) -> str:
        if r["_merge"] == "left_only":
            return "missing from restore"
        if r["_merge"] == "right_only":
            return "only in backup"
        if pd.isna(r["live_rows"]) or pd.isna(r["restored_rows"]):
            return "not counted"
        if r["live_rows"] == r["restored_rows"]:
            return "same"
        if not r["exact"]:
            if abs(r["live_rows"] - r["restored_rows"]) <= ESTIMATE_TOLERANCE * max(r["live_rows"], 1):
                return "same (estimated)"
            # two planner estimates that disagree say nothing about rows written or deleted: never claim either
            return "estimate, not compared"
        if r["restored_rows"] == 0:
            return "restored empty"
        return "more live" if r["live_rows"] > r["restored_rows"] else "more in backup"

    m["status"] = m.apply(status, axis=1).astype(str) if len(m) else pd.Series(dtype=str)
    m["diff_rows"] = m["live_rows"] - m["restored_rows"]
    m["error"] = m["live_error"].fillna(m["restored_error"])
    cols = key + ["live_rows", "restored_rows", "diff_rows", "exact", "status", "live_size_bytes",
                  "restored_size_bytes", "error"]
    return m[cols].sort_values(key).reset_index(drop=True)


def completeness(live, restored, *, exact_max_rows: int = EXACT_COUNT_MAX_ROWS) -> Completeness:
    """Compare two sessions: objects by (kind, schema, name), tables by row count."""
    live_tables = tables(live)
    restored_tables = tables(restored)
    live_counts = count_rows(live, live_tables, exact_max_rows=exact_max_rows)
    restored_counts = count_rows(restored, restored_tables, exact_max_rows=exact_max_rows,
                                 estimate_from=live_tables, live=False)
    return Completeness(compare_objects(inventory(live), inventory(restored)),
                        compare_tables(live_counts, restored_counts))
