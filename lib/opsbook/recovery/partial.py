"""What a recovery could not compare because its role may not read live rows: the reason, found in the catalogue
before anything is read, and what the server's statistics still tell (rows fewer live than in the backup)."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.findings import PARTIAL, Finding, Severity

# One table as this role sees it: may it read every column, would row-level security policies run as opsbook, and
# the server's own count of its live rows (pg_stat_all_tables, readable by any role; reltuples where the statistics
# were reset). Nothing of the table itself is read, so a missing privilege writes no ERROR line in the server log.
_LIVE_TABLE = """
SELECT me.role,
       pg_catalog.has_schema_privilege(c.relnamespace, 'USAGE') AS schema_usage,
       pg_catalog.has_table_privilege(c.oid, 'SELECT') AS table_select,
       pg_catalog.array_to_string(ARRAY(
         SELECT a.attname FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           AND NOT pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT') ORDER BY a.attnum), ', ')
         AS hidden_columns,
       c.relrowsecurity AND NOT me.bypass AS policies_would_run,
       s.n_live_tup,
       coalesce(s.n_live_tup + s.n_dead_tup + s.n_tup_ins + s.n_tup_upd + s.n_tup_del > 0
                OR s.last_vacuum IS NOT NULL OR s.last_autovacuum IS NOT NULL
                OR s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL, false) AS counted,
       c.reltuples::bigint AS reltuples
FROM pg_catalog.pg_class c
CROSS JOIN (SELECT rolname AS role, rolsuper OR rolbypassrls AS bypass FROM pg_catalog.pg_roles
            WHERE rolname = current_user) me
LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
WHERE c.oid = pg_catalog.to_regclass(:table)
"""
DATA_GRANT = "GRANT pg_read_all_data TO {role};  -- PostgreSQL 14+; or GRANT SELECT ON {table} TO {role};"
RLS_ROLE = ("Run as a role with BYPASSRLS (Supabase's postgres) or a superuser: policies are code written by the "
            "database's users and never run with opsbook's privileges.")


# The schema of a name as the user typed it, when this role may not use it: asked before any lookup by name
# (to_regclass raises "permission denied for schema", an ERROR line in the server's log).
_SCHEMA_BLOCKED = """
SELECT n.nspname AS schema, current_user AS role
FROM pg_catalog.pg_namespace n
WHERE n.nspname = (pg_catalog.parse_ident(:table, false))[1]
  AND pg_catalog.array_length(pg_catalog.parse_ident(:table, false), 1) = 2
  AND NOT pg_catalog.has_schema_privilege(n.oid, 'USAGE')
"""


def schema_blocked(session, table: str) -> Finding | None:
    """recovery.key's finding when the table's schema is closed to this role (Supabase's auth to pg_monitor)."""
    try:
        df = session.query(_SCHEMA_BLOCKED, table=table)
    except Exception:  # noqa: BLE001 - a name parse_ident does not take: the lookup itself says what is wrong
        return None
    if df.empty:
        return None
    schema, role = str(df.iloc[0]["schema"]), str(df.iloc[0]["role"])
    reason = f"role {role} has no USAGE on schema {schema}, so {table} cannot even be looked up"
    return Finding("recovery.key", Severity.CRITICAL, f"{table} cannot be recovered as {role}: no USAGE on schema "
                   f"{schema}", detail=f"{reason}; nothing was restored or compared.", objects=[table],
                   skipped=f"{PARTIAL}: {reason}",
                   remediation=f"GRANT USAGE ON SCHEMA {schema} TO {role}; "
                               + DATA_GRANT.format(role=role, table=table) + " Or run as the schema's owner.")


@dataclass
class LiveAccess:
    """Why live rows of one table cannot be read by this role (None: they can), and the server's count of them."""

    role: str
    blind: str | None  # the reason, one sentence
    remediation: str
    live_estimate: int | None
    from_statistics: bool


def live_access(session, info) -> LiveAccess:
    """From the catalogue only: may this role read every column of the table, without policies running."""
    row = session.query(_LIVE_TABLE, table=info.qualified).iloc[0]
    role = str(row["role"])
    if row["counted"]:  # the statistics saw the table's rows come and go
        estimate, from_statistics = int(row["n_live_tup"]), True
    else:  # reset statistics: the planner's estimate, when it has one (-1 on 14+, 0 before: never analyzed)
        estimate, from_statistics = (int(row["reltuples"]) if row["reltuples"] > 0 else None), False
    grant = DATA_GRANT.format(role=role, table=info.qualified)
    blind, remediation = None, ""
    if not row["schema_usage"]:
        blind, remediation = (f"role {role} has no USAGE on schema {info.schema}, so live rows of {info.display} "
                              "were not read", f"GRANT USAGE ON SCHEMA {info.schema} TO {role}; {grant}")
    elif not row["table_select"] and row["hidden_columns"]:
        hidden = str(row["hidden_columns"])
        what = (f"SELECT on {info.display}" if set(hidden.split(", ")) >= set(info.columns)
                else f"SELECT on column(s) {hidden} of {info.display}")
        blind, remediation = f"role {role} has no {what}, so its live rows were not read", grant
    elif row["policies_would_run"]:
        blind, remediation = (f"row-level security is on for {info.display} and role {role} does not bypass it, so "
                              "live rows were not read (its policies would run with opsbook's privileges)", RLS_ROLE)
    return LiveAccess(role, blind, remediation, estimate, from_statistics)


def not_compared(access: LiveAccess) -> str:
    """The `skipped` text of a comparison this role could not make: the verdict lists it as incomplete."""
    return f"{PARTIAL}: {access.blind}"


def fewer_live(info, access: LiveAccess, backup_rows: int, filter_sql: str | None) -> list[Finding]:
    """What the counts alone say: rows fewer live than in the backup is a finding of its own (which rows, only a
    comparison by key can tell); more or as many live proves nothing (new rows hide deleted ones)."""
    if access.live_estimate is None or filter_sql:
        return []
    source = ("the server's statistics (pg_stat_all_tables.n_live_tup)" if access.from_statistics
              else "the planner's estimate (pg_class.reltuples, from the last VACUUM or ANALYZE)")
    counts = (f"The backup holds {backup_rows:,} rows of {info.display}; live holds about {access.live_estimate:,} "
              f"by {source}, an estimate read without reading the table.")
    fewer = backup_rows - access.live_estimate
    if fewer > 0:
        return [Finding("recovery.missing_rows", Severity.WARNING,
                        f"about {fewer:,} row(s) fewer live than in the backup of {info.display}",
                        detail=f"{counts} Which rows are missing, and whether rows written since the backup hide "
                               "more of them, only a comparison by key can tell.",
                        objects=[info.display], value=int(fewer), remediation=access.remediation)]
    return [Finding("recovery.missing_rows", Severity.INFO,
                    f"live holds about as many rows of {info.display} as the backup, or more",
                    detail=f"{counts} That is no proof nothing is missing: rows inserted since the backup hide as "
                           "many deleted ones.", objects=[info.display], value=0, remediation=access.remediation)]


def uncounted_tables(tables, role: str | None) -> list[Finding]:
    """backup-verification: live tables this role may not read were not compared; an incomplete verdict is a
    warning that says so, never an all-clear."""
    from .compare import unread  # noqa: PLC0415

    names = unread(tables)
    if not names:
        return []
    who = f"role {role}" if role else "this role"
    reason = f"{PARTIAL}: {len(names):,} table(s) whose rows {who} may not read were not compared"
    return [Finding("backup.completeness", Severity.WARNING,
                    f"completeness not verified for {len(names):,} table(s): {who} may not read their rows",
                    detail="Their live rows were not counted (no SELECT, or row-level security whose policies would "
                           "run with opsbook's privileges), so whether the backup holds all of them is unknown. "
                           "The rest of the comparison stands.",
                    objects=names[:50], value=len(names), skipped=reason,
                    remediation=DATA_GRANT.format(role=role or "<this role>", table="<table>") + " " + RLS_ROLE)]


# What pg_dump would meet as this role, from the catalogue only: schemas it may not enter, tables and sequences it
# may not read (it locks and reads each one), and row-level security it does not bypass (pg_dump then stops with
# "query would be affected by row-level security policy"). Each would be an ERROR line in the server's log and a
# failed dump; extension members are left to their extension, as pg_dump leaves them.
_DUMP_BLOCKERS = """
WITH me AS (SELECT rolsuper OR rolbypassrls AS bypass, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user),
user_ns AS (
  SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
  WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_namespace'::regclass
                    AND d.objid = n.oid AND d.deptype = 'e'))
SELECT 'schema' AS kind, pg_catalog.quote_ident(ns.nspname) AS name FROM user_ns ns, me
WHERE NOT me.rolsuper AND NOT pg_catalog.has_schema_privilege(ns.oid, 'USAGE')
UNION ALL
SELECT CASE WHEN c.relrowsecurity AND NOT me.bypass AND c.relowner <> (SELECT oid FROM pg_catalog.pg_roles
                                                                        WHERE rolname = current_user)
            AND pg_catalog.has_table_privilege(c.oid, 'SELECT') THEN 'rls' ELSE 'select' END,
       pg_catalog.quote_ident(ns.nspname) || '.' || pg_catalog.quote_ident(c.relname)
FROM pg_catalog.pg_class c JOIN user_ns ns ON ns.oid = c.relnamespace, me
WHERE NOT me.rolsuper AND c.relkind IN ('r', 'p', 'S', 'm')
  AND pg_catalog.has_schema_privilege(ns.oid, 'USAGE')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
  AND (NOT pg_catalog.has_table_privilege(c.oid, 'SELECT')
       OR (c.relrowsecurity AND NOT me.bypass
           AND c.relowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)))
ORDER BY 1, 2
"""


def dump_blocked(session) -> str | None:
    """Why pg_dump as this role would fail, from the catalogue (None: nothing in its way). Asked before pg_dump
    runs: a refused dump writes ERROR lines into the production log and produces no backup either."""
    try:
        df = session.query(_DUMP_BLOCKERS)
    except Exception:  # noqa: BLE001 - the probe is a courtesy: pg_dump itself then says what is wrong
        return None
    if df.empty:
        return None
    role = session.query("SELECT current_user AS role").iloc[0]["role"]
    parts = []
    for kind, what in (("schema", "no USAGE on schema(s)"), ("select", "no SELECT on"),
                       ("rls", "row-level security it does not bypass on")):
        names = df.loc[df["kind"] == kind, "name"].tolist()
        if names:
            more = f" and {len(names) - 5:,} more" if len(names) > 5 else ""
            parts.append(f"{what} {', '.join(names[:5])}{more}")
    return (f"no backup was taken: pg_dump as role {role} would be refused ({'; '.join(parts)}); a complete dump "
            "needs a role that reads everything (a superuser, or pg_read_all_data with BYPASSRLS as Supabase's "
            "postgres): point take_backup's target at such a role, or verify an existing backup with `backup`")
