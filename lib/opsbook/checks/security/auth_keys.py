"""Foreign keys into Supabase Auth's tables on a unique key other than the primary key (splinter 0021)."""
from __future__ import annotations

from ...core.errors import SkipCheck
from ...core.findings import Finding, Severity
from ..registry import Check, CheckContext, register
from .rls import q
from .scope import scope

RUNBOOKS = ("security-audit",)


def auth_unique_fkeys(ctx: CheckContext):
    if not scope(ctx).has_auth_users:
        raise SkipCheck("does not apply: there is no auth.users table (no Supabase Auth here)")
    return ctx.db.fetch("security/auth_unique_fkeys")


def judge_auth_unique_fkeys(df) -> list[Finding]:
    out = [Finding("security.auth_unique_fkey", Severity.CRITICAL,
                   f"{r.schema_name}.{r.table_name}: foreign key {r.constraint_name} references {r.referenced_table} "
                   f"through {r.referenced_key}, not its primary key",
                   detail=f"{r.definition}. Supabase Auth owns its tables' keys and may drop or change a unique key "
                          "in an upgrade: the foreign key then blocks that upgrade (security fixes included), and a "
                          "user who changes the email or phone the key names breaks or re-targets the link.",
                   objects=[f"{r.schema_name}.{r.table_name}"],
                   remediation=f'ALTER TABLE {q(r.schema_name, r.table_name)} DROP CONSTRAINT "{r.constraint_name}";'
                               "  -- then reference auth.users (id), its primary key")
           for r in df.itertuples()]
    return out or [Finding("security.auth_unique_fkey", Severity.OK,
                           "no foreign key into auth on a key other than the primary key")]


AUTH_UNIQUE_FKEY = register(Check(
    id="security.auth_unique_fkey",
    description="Foreign keys from user tables to a unique key of an auth table other than its primary key "
                "(auth.users(email), say), which Supabase Auth may change in an upgrade (splinter 0021, ERROR).",
    data=auth_unique_fkeys, judge=judge_auth_unique_fkeys, queries=("security/auth_unique_fkeys",),
    runbooks=RUNBOOKS))
