"""Supabase Queues (pgmq) served over the Data API without row-level security: directly (schema pgmq exposed) or
through the pgmq_public functions (splinter 0019); judged from grants and the catalogue, no queue is read."""
from __future__ import annotations

from ...core.findings import Finding, Severity
from ..registry import Check, CheckContext, register
from .rls import q
from .scope import params, require_api_roles

RUNBOOKS = ("security-audit",)


def queue_exposure(ctx: CheckContext):
    """Per queue table and API role: privileges, and whether the API reaches it directly or over /rpc."""
    import pandas as pd  # noqa: PLC0415

    s = require_api_roles(ctx)
    if "pgmq" not in s.present_schemas:  # nothing to expose: a true answer, not a gap in what this role sees
        df = pd.DataFrame(columns=["schema_name", "table_name", "kind", "rls_enabled", "role_name", "schema_usage",
                                   "privileges", "direct", "rpc_functions", "definer_functions"])
        df.attrs["not_applicable"] = "no schema pgmq (Supabase Queues are not enabled here)"
        return df
    tables = ctx.db.fetch("security/queue_tables", **params(s))
    functions = ctx.db.fetch("security/queue_functions", **params(s))
    tables["direct"] = "pgmq" in s.api_schemas
    rpc, definer = {}, {}
    if "pgmq_public" in s.api_schemas:
        for f in functions.itertuples():
            for role in filter(None, (f.executors or "").split(", ")):
                rpc.setdefault(role, []).append(f.function_name)
                if f.security_definer:
                    definer.setdefault(role, []).append(f.function_name)
    tables["rpc_functions"] = [", ".join(sorted(set(rpc.get(r, [])))) for r in tables["role_name"]]
    tables["definer_functions"] = [", ".join(sorted(set(definer.get(r, [])))) for r in tables["role_name"]]
    tables.attrs["api_schemas"] = list(s.api_schemas)
    return tables


def reach(r) -> str:
    """How the API reaches this table for this role, or '' when it does not."""
    ways = []
    if r.direct and r.schema_usage and r.privileges:
        ways.append(f"{r.privileges} through /rest/v1 on schema pgmq")
    if r.definer_functions:
        ways.append(f"pgmq_public.{{{r.definer_functions}}} over /rpc, running as their owner")
    elif r.rpc_functions and r.schema_usage and r.privileges:
        ways.append(f"{r.privileges} through pgmq_public.{{{r.rpc_functions}}} over /rpc")
    return "; ".join(ways)


def judge_queue_exposure(df) -> list[Finding]:
    if df.attrs.get("not_applicable"):
        return [Finding("security.queue_exposed", Severity.OK, f"not applicable: {df.attrs['not_applicable']}")]
    out, granted = [], []
    for (schema, table), g in df.groupby(["schema_name", "table_name"], sort=True):
        ways = [(r.role_name, reach(r)) for r in g.itertuples() if reach(r)]
        definer = any(r.definer_functions for r in g.itertuples())
        if ways and (not bool(g["rls_enabled"].iloc[0]) or definer):
            why = ("row-level security is off" if not bool(g["rls_enabled"].iloc[0]) else
                   "SECURITY DEFINER functions read it past row-level security")
            out.append(Finding(
                "security.queue_exposed", Severity.CRITICAL,
                f"{g['kind'].iloc[0]} {schema}.{table} is open to {', '.join(r for r, _ in ways)} over the Data API",
                detail=f"{why}: anyone with the anon key (or any signed-up user) can read, add or remove its "
                       f"messages. " + "; ".join(f"{role}: {how}" for role, how in ways) + ".",
                objects=[f"{schema}.{table}"], value=len(ways),
                remediation=f"ALTER TABLE {q(schema, table)} ENABLE ROW LEVEL SECURITY;  -- then a policy per role; "
                            f"or REVOKE ALL ON {q(schema, table)} FROM anon, authenticated;"))
        elif not bool(g["rls_enabled"].iloc[0]) and any(g["privileges"] != ""):
            granted.append(f"{schema}.{table}")
    if granted:
        out.append(Finding("security.queue_exposed", Severity.INFO,
                           f"{len(granted)} queue table(s) granted to the API roles without row-level security, "
                           "not reachable over the Data API today",
                           detail="Exposed schemas: " + (", ".join(df.attrs.get("api_schemas", [])) or "none") + ". Neither "
                                  "schema pgmq exposed with USAGE, nor an exposed pgmq_public function the roles may "
                                  "execute, leads to them; either one would serve, without row-level security: "
                                  + ", ".join(granted) + ".",
                           objects=granted))
    return out or [Finding("security.queue_exposed", Severity.OK,
                           f"no queue the API roles can reach without row-level security ({df['table_name'].nunique()}"
                           " queue table(s))")]


QUEUE_EXPOSED = register(Check(
    id="security.queue_exposed",
    description="pgmq queue and archive tables without row-level security that anon or authenticated reach over the "
                "Data API: by their grants with schema pgmq exposed, or through executable pgmq_public functions with "
                "pgmq_public exposed (SECURITY DEFINER ones whatever RLS says) (splinter 0019, ERROR).",
    data=queue_exposure, judge=judge_queue_exposure, queries=("security/queue_tables", "security/queue_functions"),
    runbooks=RUNBOOKS))
