"""What holds an upgrade back: reg* columns that stop pg_upgrade, extensions behind their default version."""
from __future__ import annotations

from ...core.findings import Finding, Severity
from ...database.session import SYSTEM_SCHEMAS
from ..registry import Check, CheckContext, register
from .rls import q

RUNBOOKS = ("security-audit",)
# pg_upgrade refuses a reg* column in any schema, the platform's included: only the system schemas are left out, and
# pgsodium, whose own columns Supabase upgrades itself (splinter 0018 leaves out the same).
REG_EXCLUDED = [*SYSTEM_SCHEMAS, "pgsodium"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- security.unsupported_reg_types
def reg_type_columns(ctx: CheckContext):
    return ctx.db.fetch("security/reg_type_columns", excluded_schemas=REG_EXCLUDED)


def judge_reg_type_columns(df) -> list[Finding]:
    out = []
    for (schema, table), g in df.groupby(["schema_name", "table_name"], sort=True):
        cols = ", ".join(f"{c} ({t})" for c, t in zip(g["column_name"], g["column_type"]))
        fixes = " ".join(f"ALTER TABLE {q(schema, table)} ALTER COLUMN {_ident(c)} TYPE "
                         f"{'text[]' if t.endswith('[]') else 'text'};" for c, t in zip(g["column_name"], g["column_type"]))
        out.append(Finding("security.unsupported_reg_types", Severity.WARNING,
                           f"{schema}.{table} has reg* column(s) that stop pg_upgrade: {cols}",
                           detail="They store object oids, which differ in the new cluster, so pg_upgrade refuses the "
                                  "database and a major-version upgrade (or a Supabase platform upgrade) cannot "
                                  "proceed; security fixes of the next major version wait on it.",
                           objects=[f"{schema}.{table}"], value=len(g),
                           remediation=fixes + "  -- keep the name (regproc::text), cast back where it is used"))
    return out or [Finding("security.unsupported_reg_types", Severity.OK, "no reg* column blocks pg_upgrade")]


UNSUPPORTED_REG_TYPES = register(Check(
    id="security.unsupported_reg_types",
    description="Table and materialized-view columns of type regproc, regprocedure, regoper, regoperator, regconfig, "
                "regdictionary, regnamespace or regcollation (or arrays of them), which make pg_upgrade refuse the "
                "database (splinter 0018, WARN).",
    data=reg_type_columns, judge=judge_reg_type_columns, queries=("security/reg_type_columns",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.extension_outdated
def extensions(ctx: CheckContext):
    return ctx.db.fetch("security/extensions")


def outdated(df):
    """The installed extensions whose version is not the default the server's control file names."""
    known = df[df["default_version"].notna()]
    return known[known["installed_version"] != known["default_version"]]


def judge_extension_outdated(df) -> list[Finding]:
    out = [Finding("security.extension_outdated", Severity.WARNING,
                   f"extension {r.extension_name} is at {r.installed_version}; this server ships {r.default_version}",
                   detail="The server has the files of a newer version (its default) that ALTER EXTENSION ... UPDATE "
                          "installs; an older version keeps the fixes of the newer one out, security fixes "
                          "included.",
                   objects=[r.extension_name], value=r.installed_version, threshold=r.default_version,
                   remediation=f'ALTER EXTENSION "{r.extension_name}" UPDATE;  -- to {r.default_version}; read its '
                               "release notes first")
           for r in outdated(df).itertuples()]
    return out or [Finding("security.extension_outdated", Severity.OK,
                           f"every installed extension is at its default version ({len(df)} installed)")]


EXTENSION_OUTDATED = register(Check(
    id="security.extension_outdated",
    description="Installed extensions whose version differs from the default version the server ships "
                "(pg_extension against pg_available_extensions/pg_available_extension_versions; nothing is called) "
                "(splinter 0022, WARN).",
    data=extensions, judge=judge_extension_outdated, queries=("security/extensions",), runbooks=RUNBOOKS))
