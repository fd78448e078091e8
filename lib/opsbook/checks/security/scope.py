"""What the security checks look at: the API-exposed schemas (and where that came from), the Supabase roles."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...core.errors import SkipCheck
from ...core.findings import Finding, Severity
from ...database.session import EXCLUDED_SCHEMAS
from ..registry import Check, CheckContext, register

API_ROLES = ("anon", "authenticated")
# Schemas that extensions own (their tables are the extension's, not the user's): splinter leaves the same out of its
# table lints (0008, 0026, 0027). The one list the security checks add to the platform's (database/session.py).
EXTENSION_SCHEMAS = ("pgmq", "pgroonga", "repack", "tiger", "topology", "_timescaledb_cache", "_timescaledb_catalog",
                     "_timescaledb_config", "_timescaledb_internal")
# Platform schemas where users write the policies themselves (storage.objects, realtime.messages): splinter 0003
# reads every schema's policies, so realtime.messages is kept on purpose; the policy checks read them too.
USER_POLICY_SCHEMAS = ("storage", "realtime")
# Tables: system, platform and extension schemas left out (rls_no_policy, GraphQL exposure, reg* columns).
TABLE_EXCLUDED = [*EXCLUDED_SCHEMAS, *EXTENSION_SCHEMAS]
# Policies: the same, but the platform schemas users write policies in are kept.
POLICY_EXCLUDED = [s for s in TABLE_EXCLUDED if s not in USER_POLICY_SCHEMAS]
# The checks that need Supabase's API roles (they ask what anon/authenticated can do); on plain PostgreSQL the
# scope check says once that they do not apply, and the runbook does not run them.
SUPABASE_CHECKS = ("security.rls_disabled", "security.policy_always_true", "security.rls_user_metadata",
                   "security.auth_users_exposed", "security.security_definer_view",
                   "security.secdef_function_executable", "security.materialized_view_in_api",
                   "security.foreign_table_in_api", "security.sensitive_columns_exposed", "security.bucket_listing",
                   "security.queue_exposed", "security.graphql_anon_exposed",
                   "security.graphql_authenticated_exposed")


@dataclass
class Scope:
    """The API-exposed schemas, which source named them, and the API roles present."""

    api_schemas: list[str]
    source: str
    api_roles: list[str]
    has_auth_users: bool
    has_storage_tables: bool
    current_user: str
    is_superuser: bool
    missing_schemas: list[str] = field(default_factory=list)
    can_read_auth_users: bool = True
    can_read_storage_tables: bool = True
    empty_settings: list[str] = field(default_factory=list)  # pgrst.db_schemas set to '' (not the same as unset)
    present_schemas: frozenset = frozenset()  # every schema of the database, from pg_namespace

    @property
    def supabase(self) -> bool:
        return bool(self.api_roles)

    def describe(self) -> str:
        where = ", ".join(self.api_schemas) or "none"
        empty = "".join(f"; {e} is set but empty" for e in self.empty_settings if e not in self.source)
        return f"API-exposed schemas: {where}; from {self.source}{empty}"


def _split(value) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [s.strip().strip('"') for s in items if str(s).strip()]


def scope(ctx: CheckContext) -> Scope:
    """Computed once per session: every security check reads it."""
    cached = getattr(ctx.db, "_security_scope", None)
    if cached is not None:
        return cached
    r = ctx.db.fetch("security/scope").iloc[0]
    override = _split(ctx.params.get("api_schemas"))
    configured = _split(ctx.target.extra.get("api_schemas")) if ctx.target is not None else []
    # NULL is unset; '' is a setting that names no schema (splinter then sees nothing exposed): said, not hidden
    empty = [name for name, value in (("the pgrst.db_schemas setting", r["session_db_schemas"]),
                                      ("pgrst.db_schemas on role authenticator", r["authenticator_db_schemas"]))
             if value is not None and not _split(value)]
    if override:
        schemas, source = override, "the runbook's api_schemas parameter"
    elif _split(r["session_db_schemas"]):
        schemas, source = _split(r["session_db_schemas"]), "the pgrst.db_schemas setting"
    elif _split(r["authenticator_db_schemas"]):
        schemas, source = _split(r["authenticator_db_schemas"]), "pgrst.db_schemas set on role authenticator"
    elif configured:
        schemas, source = configured, f"api_schemas of target {ctx.target.name!r} in opsbook.toml"
    elif empty:
        schemas, source = ["public"], (f"the default, public: {' and '.join(empty)} is set but empty, naming no "
                                       "schema (splinter then sees none exposed), and no api_schemas in opsbook.toml")
    else:
        schemas, source = ["public"], "the default, public: no pgrst.db_schemas setting and no api_schemas in opsbook.toml"
    existing = set(r["schemas"])
    s = Scope(api_schemas=[x for x in schemas if x in existing], source=source, api_roles=list(r["api_roles"]),
              has_auth_users=bool(r["has_auth_users"]), has_storage_tables=bool(r["has_storage_tables"]),
              current_user=str(r["current_user_name"]), is_superuser=bool(r["is_superuser"]),
              missing_schemas=[x for x in schemas if x not in existing],
              can_read_auth_users=bool(r["can_read_auth_users"]),
              can_read_storage_tables=bool(r["can_read_storage_tables"]), empty_settings=empty,
              present_schemas=frozenset(existing))
    try:
        ctx.db._security_scope = s
    except AttributeError:  # pragma: no cover - a session type without attributes: compute again next time
        pass
    return s


def require_api_roles(ctx: CheckContext) -> Scope:
    """The scope, or SkipCheck when neither anon nor authenticated exists (not a Supabase database)."""
    s = scope(ctx)
    if not s.supabase:
        raise SkipCheck("does not apply: no role anon or authenticated (not a Supabase/PostgREST database); "
                        "nothing is exposed over a Data API here")
    return s


def params(s: Scope) -> dict:
    """The bound parameters the exposure queries share."""
    return {"api_schemas": s.api_schemas, "api_roles": s.api_roles}


# ---------------------------------------------------------------- security.scope
def scope_data(ctx: CheckContext):
    import pandas as pd  # noqa: PLC0415

    s = scope(ctx)
    df = pd.DataFrame([{"api_schemas": ", ".join(s.api_schemas), "source": s.source,
                        "api_roles": ", ".join(s.api_roles) or "none", "auth_users": s.has_auth_users,
                        "storage": s.has_storage_tables, "connected_as": s.current_user,
                        "superuser": s.is_superuser}])
    df.attrs["scope"] = s
    return df


def judge_scope(df) -> list[Finding]:
    s: Scope = df.attrs["scope"]
    if not s.supabase:
        return [Finding("security.scope", Severity.INFO,
                        f"not a Supabase database: {len(SUPABASE_CHECKS)} Supabase checks do not apply",
                        detail="No role anon or authenticated exists, so nothing is served over a Data API "
                               "(PostgREST) here. Not run: " + ", ".join(SUPABASE_CHECKS) + ". The role, "
                               "privilege, RLS policy, function and authentication checks still run.",
                        value=len(SUPABASE_CHECKS))]
    missing = (f" Named but absent: {', '.join(s.missing_schemas)}." if s.missing_schemas else "")
    visibility = ("" if s.is_superuser else f" Connected as {s.current_user} (not a superuser): checks that "
                  "need more say so on their own.")
    unread = [t for t, present, readable in (("auth.users", s.has_auth_users, s.can_read_auth_users),
                                             ("storage.buckets/objects", s.has_storage_tables,
                                              s.can_read_storage_tables)) if present and not readable]
    if unread:
        visibility += (f" Present but not readable by {s.current_user}: {', '.join(unread)} (recognised from the "
                       "catalogue, which every role reads).")
    return [Finding("security.scope", Severity.INFO, s.describe(),
                    detail=f"Roles present: {', '.join(s.api_roles)}. Tables, views and functions in these schemas "
                           f"are what PostgREST serves to anyone holding the anon key.{missing}{visibility}",
                    objects=list(s.api_schemas))]


SCOPE = register(Check(
    id="security.scope",
    description="Which schemas the Data API exposes (pgrst.db_schemas, else role authenticator's setting, else the "
                "target's api_schemas in opsbook.toml, else public) and whether the Supabase roles exist; on plain "
                "PostgreSQL it says once that the Supabase checks do not apply.",
    data=scope_data, judge=judge_scope, queries=("security/scope",), runbooks=("security-audit",)))
