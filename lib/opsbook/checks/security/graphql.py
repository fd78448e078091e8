"""What pg_graphql's introspection shows anon and signed-in users: every relation they may SELECT, names and
columns, even where row-level security hides the rows (splinter 0026, 0027); from the catalogue, pg_graphql is never
called."""
from __future__ import annotations

from ...core.findings import Finding, Severity
from ..registry import Check, CheckContext, register
from .rls import q
from .scope import TABLE_EXCLUDED, params, require_api_roles

RUNBOOKS = ("security-audit",)


def graphql_exposure(ctx: CheckContext):
    s = require_api_roles(ctx)
    ext = ctx.db.fetch("security/extensions")
    if "pg_graphql" not in set(ext["extension_name"]):  # nothing is introspected: a true answer, not a gap
        import pandas as pd  # noqa: PLC0415

        df = pd.DataFrame(columns=["schema_name", "object_name", "kind", "rls_enabled", "role_name"])
        df.attrs["not_applicable"] = "extension pg_graphql is not installed (no /graphql/v1 here)"
        return df
    return ctx.db.fetch("security/graphql_exposed", excluded_schemas=TABLE_EXCLUDED, **params(s))


def _judge(df, role: str, check: str, who: str) -> list[Finding]:
    if df.attrs.get("not_applicable"):
        return [Finding(check, Severity.OK, f"not applicable: {df.attrs['not_applicable']}")]
    out = []
    for r in df[df["role_name"] == role].itertuples():
        name = f"{r.schema_name}.{r.object_name}"
        rows = ("its rows stay behind row-level security" if r.rls_enabled else
                "its rows are readable too: it has no row-level security" if r.kind == "table" else
                f"its rows are whatever the {r.kind} returns to {role}")
        out.append(Finding(check, Severity.WARNING, f"{r.kind} {name} is visible to {who} in GraphQL introspection",
                           detail=f"pg_graphql is installed and {role} may SELECT it: its name, columns and "
                                  f"relationships are listed at /graphql/v1 for {who}; {rows}. Intended for what is "
                                  "meant to be discoverable; otherwise a grant too many.",
                           objects=[name],
                           remediation=f"REVOKE SELECT ON {q(r.schema_name, r.object_name)} FROM {role};  -- or "
                                       "keep it, if it is meant to be visible"))
    return out or [Finding(check, Severity.OK, f"nothing visible to {who} in GraphQL introspection")]


def judge_graphql_anon(df) -> list[Finding]:
    return _judge(df, "anon", "security.graphql_anon_exposed", "anyone with the anon key")


def judge_graphql_authenticated(df) -> list[Finding]:
    return _judge(df, "authenticated", "security.graphql_authenticated_exposed", "any signed-in user")


GRAPHQL_ANON_EXPOSED = register(Check(
    id="security.graphql_anon_exposed",
    description="With pg_graphql installed, tables, views, materialized views and foreign tables anon may SELECT "
                "(any column): their names and columns are in the public GraphQL introspection even under RLS "
                "(splinter 0026, WARN).",
    data=graphql_exposure, judge=judge_graphql_anon, queries=("security/extensions", "security/graphql_exposed"),
    runbooks=RUNBOOKS))

GRAPHQL_AUTHENTICATED_EXPOSED = register(Check(
    id="security.graphql_authenticated_exposed",
    description="With pg_graphql installed, tables, views, materialized views and foreign tables authenticated may "
                "SELECT (any column): visible in GraphQL introspection to any signed-up user even under RLS "
                "(splinter 0027, WARN).",
    data=graphql_exposure, judge=judge_graphql_authenticated,
    queries=("security/extensions", "security/graphql_exposed"), runbooks=RUNBOOKS))
