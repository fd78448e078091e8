"""Row-level security: exposed tables without it, tables and policies that do not match, policies that let too much
through or cost a function call per row."""
from __future__ import annotations

import re

from ...core.findings import Finding, Severity
from ..registry import Check, CheckContext, register
from .scope import POLICY_EXCLUDED, TABLE_EXCLUDED, params, require_api_roles, scope

RUNBOOKS = ("security-audit",)
WRITES = ("INSERT", "UPDATE", "DELETE")


def q(schema: str, name: str) -> str:
    """A quoted, qualified name for the SQL shown as a fix."""
    return ".".join('"' + p.replace('"', '""') + '"' if not re.fullmatch(r"[a-z_][a-z0-9_]*", p) else p
                    for p in (schema, name))


def expr_text(expr) -> str:
    """A policy expression for display: '-' when there is none."""
    return "-" if expr is None or expr != expr else str(expr)


def _policies(ctx: CheckContext):
    """Every policy users wrote: realtime.messages and storage.objects included, extension schemas left out."""
    return ctx.db.fetch("security/policies", excluded_schemas=POLICY_EXCLUDED, **params(scope(ctx)))


def _policy_ref(r) -> str:
    return f'policy "{r.policy_name}" on {r.schema_name}.{r.table_name}'


# ---------------------------------------------------------------- security.rls_disabled
def rls_disabled(ctx: CheckContext):
    return ctx.db.fetch("security/rls_disabled", **params(require_api_roles(ctx)))


def judge_rls_disabled(df) -> list[Finding]:
    out = []
    for (schema, table), g in df.groupby(["schema_name", "table_name"], sort=True):
        name = f"{schema}.{table}"
        who = "; ".join(f"{r.role_name}: {r.privileges}" for r in g.itertuples())
        roles = ", ".join(g["role_name"])
        out.append(Finding(
            "security.rls_disabled", Severity.CRITICAL, f"{name} has no row-level security and is open to {roles}",
            detail=f"Anyone holding the anon key (it ships in every frontend) can use it through the Data API. "
                   f"Privileges: {who}. About {g['rows_est'].iloc[0]:,.0f} rows.",
            objects=[name], value=len(g),
            remediation=f"ALTER TABLE {q(schema, table)} ENABLE ROW LEVEL SECURITY;  -- then CREATE POLICY for "
                        f"what each role may see; or, if no client should touch it: REVOKE ALL ON "
                        f"{q(schema, table)} FROM anon, authenticated;"))
    return out or [Finding("security.rls_disabled", Severity.OK,
                           "every table the API roles can reach has row-level security")]


RLS_DISABLED = register(Check(
    id="security.rls_disabled",
    description="Tables in the API-exposed schemas without row-level security that anon or authenticated may "
                "SELECT/INSERT/UPDATE/DELETE, with the privileges each role actually has (splinter 0013).",
    data=rls_disabled, judge=judge_rls_disabled, queries=("security/rls_disabled",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.rls_no_policy
def rls_no_policy(ctx: CheckContext):
    return ctx.db.fetch("security/rls_no_policy", excluded_schemas=TABLE_EXCLUDED, **params(scope(ctx)))


def judge_rls_no_policy(df) -> list[Finding]:
    out = [Finding("security.rls_no_policy", Severity.INFO,
                   f"{r.schema_name}.{r.table_name}: row-level security on, no policy",
                   detail="Only its owner and BYPASSRLS roles (service_role) see or change rows; every API request "
                          "gets nothing. Intended for server-only tables; otherwise a forgotten policy.",
                   objects=[f"{r.schema_name}.{r.table_name}"],
                   remediation=f"CREATE POLICY ... ON {q(r.schema_name, r.table_name)} FOR SELECT TO authenticated "
                               "USING (...);  -- or leave it server-only on purpose")
           for r in df.itertuples()]
    return out or [Finding("security.rls_no_policy", Severity.OK, "every table with row-level security has a policy")]


RLS_NO_POLICY = register(Check(
    id="security.rls_no_policy",
    description="Tables with row-level security enabled and no policy: closed to every API role, fine for "
                "server-only tables, a forgotten policy otherwise (splinter 0008).",
    data=rls_no_policy, judge=judge_rls_no_policy, queries=("security/rls_no_policy",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.policy_rls_disabled
def judge_policy_rls_disabled(df) -> list[Finding]:
    out = []
    for (schema, table), g in df[~df["rls_enabled"].astype(bool)].groupby(["schema_name", "table_name"], sort=True):
        names = ", ".join(f'"{p}"' for p in g["policy_name"])
        out.append(Finding(
            "security.policy_rls_disabled", Severity.CRITICAL,
            f"{schema}.{table} has {len(g)} polic{'y' if len(g) == 1 else 'ies'} but row-level security is off",
            detail=f"Policies {names} are written but not enforced: every role with a grant sees every row.",
            objects=[f"{schema}.{table}"], value=len(g),
            remediation=f"ALTER TABLE {q(schema, table)} ENABLE ROW LEVEL SECURITY;"))
    return out or [Finding("security.policy_rls_disabled", Severity.OK, "every table with policies enforces them")]


POLICY_RLS_DISABLED = register(Check(
    id="security.policy_rls_disabled",
    description="Tables that have row-level security policies while row-level security is disabled, so the "
                "policies do nothing (splinter 0007).",
    data=_policies, judge=judge_policy_rls_disabled, queries=("security/policies",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.policy_always_true
_TRUE = {"true", "1=1"}


def always_true(expr) -> bool:
    """USING/WITH CHECK that is constant true whatever the row or the user."""
    if expr is None or expr != expr:
        return False
    return re.sub(r"[\s()]", "", str(expr).lower()) in _TRUE


def _api_facing(roles) -> list[str]:
    return [r for r in roles if r in ("public", "anon", "authenticated")]


def policy_always_true(ctx: CheckContext):
    require_api_roles(ctx)
    return _policies(ctx)


def always_true_policies(df) -> list[dict]:
    """Permissive policies for PUBLIC/anon/authenticated on RLS tables whose USING or WITH CHECK lets every row by."""
    missing = lambda x: x is None or x != x  # noqa: E731 - None or NaN
    out = []
    for r in df[df["rls_enabled"].astype(bool) & df["permissive"].astype(bool)].itertuples():
        roles = _api_facing(r.roles)
        if not roles:
            continue
        using_true = always_true(r.using_expr) or (missing(r.using_expr) and r.command in ("UPDATE", "DELETE", "ALL"))
        check_true = always_true(r.check_expr) or (missing(r.check_expr) and (
            r.command == "INSERT" or (r.command in ("UPDATE", "ALL") and using_true)))
        if using_true or check_true:
            out.append({"row": r, "roles": roles, "using_true": using_true, "check_true": check_true,
                        "writes": r.command in WRITES + ("ALL",)})
    return out


def judge_policy_always_true(df) -> list[Finding]:
    out = []
    for p in always_true_policies(df):
        r, roles, using_true, check_true = p["row"], p["roles"], p["using_true"], p["check_true"]
        what = ("USING and WITH CHECK are" if using_true and check_true else
                "USING is" if using_true else "WITH CHECK is")
        if p["writes"]:
            verb = "read and change" if r.command == "ALL" else r.command
            sev, why = Severity.WARNING, (f"{', '.join(roles)} may {verb} every row: row-level security does "
                                          "nothing for them here.")
        else:
            sev, why = Severity.INFO, (f"{', '.join(roles)} may read every row: right for public data (a catalogue), "
                                       "wrong for anything per user.")
        out.append(Finding("security.policy_always_true", sev,
                           f"{_policy_ref(r)} ({r.command}): {what} always true",
                           detail=f"{why} USING: {expr_text(r.using_expr)}; WITH CHECK: {expr_text(r.check_expr)}.",
                           objects=[f"{r.schema_name}.{r.table_name}"],
                           remediation=f'ALTER POLICY "{r.policy_name}" ON {q(r.schema_name, r.table_name)} '
                                       + ("USING (...) " if using_true and r.command != "INSERT" else "")
                                       + ("WITH CHECK (...)" if check_true and r.command != "DELETE" else "")
                                       + ";  -- e.g. (SELECT auth.uid()) = user_id"))
    return out or [Finding("security.policy_always_true", Severity.OK,
                           "no policy for anon/authenticated is constant true")]


POLICY_ALWAYS_TRUE = register(Check(
    id="security.policy_always_true",
    description="Permissive policies for PUBLIC, anon or authenticated whose USING or WITH CHECK is constant true "
                "(or missing): warning for writes, info for reads (public read may be intended) (splinter 0024).",
    data=policy_always_true, judge=judge_policy_always_true, queries=("security/policies",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.multiple_permissive_policies
_EXPAND = {"ALL": ["SELECT", "INSERT", "UPDATE", "DELETE"]}


def judge_multiple_permissive(df) -> list[Finding]:
    seen: dict[tuple, list[str]] = {}
    for r in df[df["permissive"].astype(bool)].itertuples():
        for role in r.roles:
            for cmd in _EXPAND.get(r.command, [r.command]):
                seen.setdefault((r.schema_name, r.table_name, role, cmd), []).append(r.policy_name)
    by_table: dict[tuple, list[str]] = {}
    for (schema, table, role, cmd), names in sorted(seen.items()):
        if len(names) > 1:
            by_table.setdefault((schema, table), []).append(f"{role} {cmd}: " + ", ".join(f'"{n}"' for n in names))
    out = [Finding("security.multiple_permissive_policies", Severity.WARNING,
                   f"{schema}.{table}: several permissive policies for the same role and command",
                   detail="Each one is evaluated for every row and OR-ed together: slower, and harder to reason "
                          "about what is allowed. " + "; ".join(items) + ".",
                   objects=[f"{schema}.{table}"], value=len(items),
                   remediation="Merge them into one policy per role and command (USING (a OR b)), or make the "
                               "extra ones AS RESTRICTIVE if they are meant to narrow.")
           for (schema, table), items in by_table.items()]
    return out or [Finding("security.multiple_permissive_policies", Severity.OK,
                           "at most one permissive policy per table, role and command")]


MULTIPLE_PERMISSIVE = register(Check(
    id="security.multiple_permissive_policies",
    description="Tables with more than one permissive policy for the same role and command (FOR ALL counts for "
                "each): every one runs for every row (splinter 0006).",
    data=_policies, judge=judge_multiple_permissive, queries=("security/policies",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.rls_initplan
_CALL = r"(?:auth\.)?(?:uid|jwt|role|email)\(\)|current_setting\([^()]*\)"
_WRAPPED = re.compile(r"select\s+(?:" + _CALL + r")(?:\s+as\s+\w+)?\s*\)", re.I)
_BARE = re.compile(_CALL, re.I)
_EITHER = re.compile(r"(?P<wrapped>select\s+(?:" + _CALL + r")(?:\s+as\s+\w+)?\s*\))|(?P<bare>" + _CALL + ")", re.I)


def per_row_calls(expr) -> list[str]:
    """The auth.*() / current_setting() calls left once those wrapped as `(SELECT f())` are taken out."""
    if expr is None or expr != expr:
        return []
    return sorted(set(m.group(0) for m in _BARE.finditer(_WRAPPED.sub("", str(expr)))))


def wrap_calls(expr) -> str:
    """The expression with each bare auth.*() / current_setting() call wrapped as (SELECT ...), the others kept."""
    return _EITHER.sub(lambda m: m.group(0) if m.group("wrapped") else f"(SELECT {m.group('bare')})", str(expr))


def initplan_fix(r) -> str:
    """The exact ALTER POLICY that evaluates the calls once per statement."""
    parts = [f"{clause} ({wrap_calls(e)})" for clause, e in (("USING", r.using_expr), ("WITH CHECK", r.check_expr))
             if e is not None and e == e and per_row_calls(e)]
    return f'ALTER POLICY "{r.policy_name}" ON {q(r.schema_name, r.table_name)} {" ".join(parts)};'


def judge_rls_initplan(df) -> list[Finding]:
    out = []
    for r in df[df["rls_enabled"].astype(bool)].itertuples():
        calls = sorted(set(per_row_calls(r.using_expr) + per_row_calls(r.check_expr)))
        if not calls:
            continue
        wrapped = ", ".join(f"(SELECT {c})" for c in calls)
        out.append(Finding("security.rls_initplan", Severity.WARNING,
                           f"{_policy_ref(r)} calls {', '.join(calls)} for every row",
                           detail=f"Written bare, the call is evaluated once per row scanned; wrapped as {wrapped} "
                                  "the planner runs it once per statement (an initplan): 100x faster on big "
                                  f"tables. USING: {expr_text(r.using_expr)}; WITH CHECK: {expr_text(r.check_expr)}.",
                           objects=[f"{r.schema_name}.{r.table_name}"], value=len(calls),
                           remediation=initplan_fix(r)))
    return out or [Finding("security.rls_initplan", Severity.OK,
                           "no policy re-evaluates auth.*() or current_setting() per row")]


RLS_INITPLAN = register(Check(
    id="security.rls_initplan",
    description="Policies that call auth.uid()/auth.jwt()/auth.role()/auth.email() or current_setting() bare, so "
                "they run once per row instead of once per statement as (SELECT auth.uid()) (splinter 0003).",
    data=_policies, judge=judge_rls_initplan, queries=("security/policies",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.rls_user_metadata
USER_METADATA = re.compile(r"user_metadata|raw_user_meta_data", re.I)


def rls_user_metadata(ctx: CheckContext):
    require_api_roles(ctx)
    return _policies(ctx)


def judge_rls_user_metadata(df) -> list[Finding]:
    out = []
    for r in df.itertuples():
        text = f"{r.using_expr or ''} {r.check_expr or ''}"
        if not USER_METADATA.search(text):
            continue
        out.append(Finding("security.rls_user_metadata", Severity.CRITICAL,
                           f"{_policy_ref(r)} trusts user_metadata",
                           detail="user_metadata is written by the user (supabase.auth.updateUser), so a policy "
                                  "deciding on it lets users grant themselves access. Expressions: " + text.strip(),
                           objects=[f"{r.schema_name}.{r.table_name}"],
                           remediation=f'ALTER POLICY "{r.policy_name}" ON {q(r.schema_name, r.table_name)} USING '
                                       "(...);  -- decide on auth.jwt() -> 'app_metadata' (server-written) or a "
                                       "table of your own"))
    return out or [Finding("security.rls_user_metadata", Severity.OK, "no policy reads user_metadata")]


RLS_USER_METADATA = register(Check(
    id="security.rls_user_metadata",
    description="Policies that read user_metadata from the JWT or auth.users, which users can edit themselves "
                "(splinter 0015).",
    data=rls_user_metadata, judge=judge_rls_user_metadata, queries=("security/policies",), runbooks=RUNBOOKS))
