"""What the Data API serves beyond tables: views over auth.users, definer views and functions, materialized views,
foreign tables, sensitive columns, extensions in public, functions with a mutable search_path."""
from __future__ import annotations

from ...core.errors import SkipCheck
from ...core.findings import Finding, Severity
from ..registry import Check, CheckContext, register
from .rls import q
from .scope import params, require_api_roles

RUNBOOKS = ("security-audit",)

# Column names that hold credentials or identifiers nobody should read through the API: opsbook's own list, after
# splinter 0023's categories (credentials, personal identifiers, financial), matched as whole `_`-separated words;
# and every other name on splinter's list (health, device, keys...) as a whole column name, as splinter matches them.
SENSITIVE_PATTERN = (r"(^|_)(password|passwd|pwd|passphrase|secret|secret_key|private_key|api_?key|auth_key|token|"
                     r"access_token|refresh_token|session_token|jwt|otp|totp|recovery_code|backup_code|ssn|"
                     r"social_security(_number)?|national_id|tax_id|passport(_number|_no)?|drivers?_licen[cs]e|"
                     r"credit_card|card_number|cvv|cvc|iban|account_number|routing_number)(_|$)|"
                     r"^(auth_code|session_id|session_key|verification_code|two_factor|2fa_code|license_number|cvn|"
                     r"bank_account|swift_code|bic|health_record|medical_record|patient_id|insurance_number|"
                     r"health_insurance|medical_insurance|treatment|mac_address|macaddr|imei|device_uuid|pgp_key|"
                     r"gpg_key|ssh_key|certificate|license_key|activation_key|facial_recognition)$")


def _readers(df, column: str = "readers"):
    return df[df[column].fillna("") != ""]


def _fn(r) -> str:
    return f"{q(r.schema_name, r.function_name)}({r.arguments})"


# ---------------------------------------------------------------- security.auth_users_exposed
def auth_users_exposed(ctx: CheckContext):
    s = require_api_roles(ctx)
    if not s.has_auth_users:
        raise SkipCheck("does not apply: there is no auth.users table (no Supabase Auth here)")
    return ctx.db.fetch("security/auth_users_exposed", **params(s))


def judge_auth_users_exposed(df) -> list[Finding]:
    out = []
    for r in _readers(df).itertuples():
        name = f"{r.schema_name}.{r.view_name}"
        blocked = [x for x in r.readers.split(", ") if x not in (r.auth_users_readers or "").split(", ")]
        if r.security_invoker and blocked == r.readers.split(", "):
            # splinter 0002 says ERROR; nothing is readable through it today, so a warning, with the grant that
            # would make it the ERROR
            out.append(Finding(
                "security.auth_users_exposed", Severity.WARNING,
                f"view {name} over auth.users is granted to {r.readers}, one grant away from exposing it",
                detail=f"It runs with the caller's rights (security_invoker) and {', '.join(blocked)} may not read "
                       "auth.users, so a request through it fails today (permission denied for table users). A "
                       f"GRANT SELECT ON auth.users TO {blocked[0]} (or a column grant) would publish every user's "
                       "email and phone through it. Supabase's advisor reports it as ERROR (0002); opsbook says "
                       "warning because nothing is readable through it yet.",
                objects=[name],
                remediation=f"REVOKE SELECT ON {q(r.schema_name, r.view_name)} FROM anon, authenticated;  -- or "
                            "move it to a schema the API does not serve"))
            continue
        out.append(Finding("security.auth_users_exposed", Severity.CRITICAL,
                           f"{r.kind} {name} exposes auth.users to {r.readers}",
                           detail="auth.users holds every user's email, phone and sign-in metadata; through this "
                                  f"{r.kind} in an API schema anyone with the {r.readers.split(', ')[0]} key reads it.",
                           objects=[name],
                           remediation=f"REVOKE SELECT ON {q(r.schema_name, r.view_name)} FROM anon, authenticated;"
                                       "  -- or move it to a schema the API does not serve"))
    return out or [Finding("security.auth_users_exposed", Severity.OK, "no API-readable view over auth.users")]


AUTH_USERS_EXPOSED = register(Check(
    id="security.auth_users_exposed",
    description="Views and materialized views in the API-exposed schemas built on auth.users that anon or "
                "authenticated may read (splinter 0002, ERROR): critical; a security_invoker view whose readers "
                "may not read auth.users is a warning (nothing is readable through it until auth.users is granted).",
    data=auth_users_exposed, judge=judge_auth_users_exposed, queries=("security/auth_users_exposed",),
    runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.security_definer_view
def definer_views(ctx: CheckContext):
    df = ctx.db.fetch("security/views", **params(require_api_roles(ctx)))
    df.attrs["invoker_supported"] = ctx.db.server_version_num >= 150000
    return df


def judge_definer_views(df) -> list[Finding]:
    supported = df.attrs.get("invoker_supported", True)
    out = []
    for r in _readers(df[~df["security_invoker"].astype(bool)]).itertuples():
        name = f"{r.schema_name}.{r.view_name}"
        fix = (f"ALTER VIEW {q(r.schema_name, r.view_name)} SET (security_invoker = on);" if supported else
               f"REVOKE SELECT ON {q(r.schema_name, r.view_name)} FROM anon, authenticated;  -- security_invoker "
               "needs PostgreSQL 15")
        out.append(Finding("security.security_definer_view", Severity.CRITICAL,
                           f"view {name} runs with its owner's rights ({r.owner}) for {r.readers}",
                           detail="A view reads its tables as its owner: row-level security of the tables below "
                                  "is checked against the owner, who usually bypasses it, not against the caller.",
                           objects=[name], remediation=fix))
    return out or [Finding("security.security_definer_view", Severity.OK,
                           "every API-readable view runs with the caller's rights")]


SECURITY_DEFINER_VIEW = register(Check(
    id="security.security_definer_view",
    description="Views in the API-exposed schemas readable by anon or authenticated that run with their owner's "
                "rights (no security_invoker), bypassing row-level security below them (splinter 0010).",
    data=definer_views, judge=judge_definer_views, queries=("security/views",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.secdef_function_executable
def secdef_functions(ctx: CheckContext):
    return ctx.db.fetch("security/secdef_functions", **params(require_api_roles(ctx)))


def judge_secdef_functions(df) -> list[Finding]:
    out = [Finding("security.secdef_function_executable", Severity.WARNING,
                   f"SECURITY DEFINER {r.schema_name}.{r.function_name}({r.arguments}) is callable by {r.executors}",
                   detail=f"PostgREST serves it as POST /rest/v1/rpc/{r.function_name}; it runs as {r.owner}, "
                          "past row-level security. New functions are executable by PUBLIC unless revoked.",
                   objects=[f"{r.schema_name}.{r.function_name}"],
                   remediation=f"REVOKE EXECUTE ON FUNCTION {_fn(r)} FROM PUBLIC, anon, authenticated;  -- or make it "
                               "SECURITY INVOKER, or move it out of the API schemas")
           for r in _readers(df, "executors").itertuples()]
    return out or [Finding("security.secdef_function_executable", Severity.OK,
                           "no SECURITY DEFINER function the API roles can call")]


SECDEF_FUNCTION_EXECUTABLE = register(Check(
    id="security.secdef_function_executable",
    description="SECURITY DEFINER functions in the API-exposed schemas that anon or authenticated may EXECUTE, "
                "i.e. call over /rpc with the owner's rights (splinter 0028, 0029).",
    data=secdef_functions, judge=judge_secdef_functions, queries=("security/secdef_functions",),
    runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.function_search_path
def function_search_path(ctx: CheckContext):
    return ctx.db.fetch("security/function_search_path")


def judge_function_search_path(df) -> list[Finding]:
    out = [Finding("security.function_search_path", Severity.WARNING,
                   f"{r.kind.lower()} {r.schema_name}.{r.function_name}({r.arguments}) has a mutable search_path"
                   + (" (SECURITY DEFINER)" if r.security_definer else ""),
                   detail="Unqualified names inside it resolve through the caller's search_path: a caller who can "
                          "create objects earlier in the path can substitute their own tables or operators.",
                   objects=[f"{r.schema_name}.{r.function_name}"],
                   remediation=f"ALTER {r.kind} {_fn(r)} SET search_path = '';  -- then schema-qualify names inside")
           for r in df.itertuples()]
    return out or [Finding("security.function_search_path", Severity.OK, "every function pins its search_path")]


FUNCTION_SEARCH_PATH = register(Check(
    id="security.function_search_path",
    description="User functions and procedures without SET search_path in their definition (splinter 0011).",
    data=function_search_path, judge=judge_function_search_path, queries=("security/function_search_path",),
    runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.extension_in_public
def extension_in_public(ctx: CheckContext):
    return ctx.db.fetch("security/extension_in_public")


def judge_extension_in_public(df) -> list[Finding]:
    out = [Finding("security.extension_in_public", Severity.WARNING,
                   f"extension {r.extension_name} {r.version} is installed in schema public",
                   detail="Its functions, types and tables sit in the schema the API serves and that everyone "
                          "searches first.",
                   objects=[r.extension_name],
                   remediation=(f"CREATE SCHEMA IF NOT EXISTS extensions; ALTER EXTENSION {r.extension_name} "
                                "SET SCHEMA extensions;" if r.relocatable else
                                f"-- not relocatable: DROP EXTENSION {r.extension_name}; CREATE EXTENSION "
                                f"{r.extension_name} SCHEMA extensions;  (check what depends on it first)"))
           for r in df.itertuples()]
    return out or [Finding("security.extension_in_public", Severity.OK, "no extension in schema public")]


EXTENSION_IN_PUBLIC = register(Check(
    id="security.extension_in_public",
    description="Extensions installed in schema public instead of a schema of their own (splinter 0014).",
    data=extension_in_public, judge=judge_extension_in_public, queries=("security/extension_in_public",),
    runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.materialized_view_in_api / foreign_table
def api_relations(ctx: CheckContext):
    return ctx.db.fetch("security/api_relations", **params(require_api_roles(ctx)))


def _judge_relations(df, check: str, kind: str, why: str) -> list[Finding]:
    rows = _readers(df[df["kind"] == kind])
    out = [Finding(check, Severity.WARNING, f"{kind} {r.schema_name}.{r.relation_name} is readable by {r.readers}",
                   detail=why, objects=[f"{r.schema_name}.{r.relation_name}"],
                   remediation=f"REVOKE SELECT ON {q(r.schema_name, r.relation_name)} FROM anon, authenticated;  "
                               "-- or move it to a schema the API does not serve")
           for r in rows.itertuples()]
    return out or [Finding(check, Severity.OK, f"no API-readable {kind}")]


def judge_matviews(df) -> list[Finding]:
    return _judge_relations(df, "security.materialized_view_in_api", "materialized view",
                            "Row-level security cannot apply to a materialized view: every reader sees every row "
                            "it holds, whatever the policies of the tables it was built from.")


def judge_foreign_tables(df) -> list[Finding]:
    return _judge_relations(df, "security.foreign_table_in_api", "foreign table",
                            "Row-level security cannot apply to a foreign table: the API serves whatever the "
                            "remote side returns to the mapped user.")


MATERIALIZED_VIEW_IN_API = register(Check(
    id="security.materialized_view_in_api",
    description="Materialized views in the API-exposed schemas readable by anon or authenticated; RLS cannot "
                "guard them (splinter 0016).",
    data=api_relations, judge=judge_matviews, queries=("security/api_relations",), runbooks=RUNBOOKS))

FOREIGN_TABLE_IN_API = register(Check(
    id="security.foreign_table_in_api",
    description="Foreign tables in the API-exposed schemas readable by anon or authenticated; RLS cannot guard "
                "them (splinter 0017).",
    data=api_relations, judge=judge_foreign_tables, queries=("security/api_relations",), runbooks=RUNBOOKS))


# ---------------------------------------------------------------- security.sensitive_columns_exposed
def sensitive_columns(ctx: CheckContext):
    return ctx.db.fetch("security/sensitive_columns", pattern=SENSITIVE_PATTERN, **params(require_api_roles(ctx)))


def judge_sensitive_columns(df) -> list[Finding]:
    out = []
    for (schema, table), g in df.groupby(["schema_name", "table_name"], sort=True):
        cols = ", ".join(g["column_name"])
        out.append(Finding("security.sensitive_columns_exposed", Severity.CRITICAL,
                           f"{schema}.{table} exposes {cols} without row-level security",
                           detail=f"Readable by {g['readers'].iloc[0]} through the Data API, every row: names like "
                                  "these hold credentials or identifiers.",
                           objects=[f"{schema}.{table}"], value=len(g),
                           remediation=f"ALTER TABLE {q(schema, table)} ENABLE ROW LEVEL SECURITY;  -- or: REVOKE "
                                       f"SELECT ({cols}) ON {q(schema, table)} FROM anon, authenticated;"))
    return out or [Finding("security.sensitive_columns_exposed", Severity.OK,
                           "no password/token/secret-like column readable without row-level security")]


SENSITIVE_COLUMNS_EXPOSED = register(Check(
    id="security.sensitive_columns_exposed",
    description="Columns named like passwords, tokens, secrets, national ids or card numbers in API-exposed tables "
                "without row-level security that anon or authenticated may read (splinter 0023).",
    data=sensitive_columns, judge=judge_sensitive_columns, queries=("security/sensitive_columns",),
    runbooks=RUNBOOKS))

