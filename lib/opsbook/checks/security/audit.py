"""The security-audit runbook's library side: which checks run, the verdict (what anon can reach), the record."""
from __future__ import annotations

from ...core import display
from ...core.findings import Severity, counts
from . import advisor
from .queues import reach
from .rls import USER_METADATA, always_true_policies, per_row_calls
from .scope import SUPABASE_CHECKS

RLS = ["security.rls_disabled", "security.rls_no_policy", "security.policy_rls_disabled",
       "security.policy_always_true", "security.multiple_permissive_policies", "security.rls_initplan",
       "security.rls_user_metadata"]
EXPOSURE = ["security.auth_users_exposed", "security.security_definer_view", "security.secdef_function_executable",
            "security.function_search_path", "security.extension_in_public", "security.materialized_view_in_api",
            "security.foreign_table_in_api", "security.sensitive_columns_exposed", "security.bucket_listing",
            "security.queue_exposed", "security.graphql_anon_exposed", "security.graphql_authenticated_exposed"]
UPGRADES = ["security.auth_unique_fkey", "security.unsupported_reg_types", "security.extension_outdated"]
ROLES = ["security.superusers", "security.password_expiry", "security.public_schema_create",
         "security.default_privileges", "security.ssl", "security.hba", "security.failed_logins"]
CHECKS = ["security.scope", *RLS, *EXPOSURE, *UPGRADES, *ROLES]


def run(rb) -> None:
    """The scope first; the Supabase checks only where the scope shows no API roles are left out (the scope finding
    says so once). A scope that could not be read decides nothing: every check runs and says for itself."""
    rb.run(["security.scope"])
    data = rb.data("security.scope")
    plain = data is not None and not data.attrs["scope"].supabase
    rb.run([c for c in CHECKS[1:] if not plain or c not in SUPABASE_CHECKS])


def unseen(rb) -> list[str]:
    """The Supabase checks that ran but could not see everything (their finding's `skipped` says why)."""
    return [f.check for f in rb.findings if f.check in SUPABASE_CHECKS and f.skipped
            and not f.skipped.startswith("does not apply")]


def _rows(rb, check: str):
    df = rb.data(check)
    return [] if df is None or not hasattr(df, "itertuples") else list(df.itertuples())


def anon_exposure(rb):
    """What anon can read or change that it should not: one row per object and privilege, with why."""
    import pandas as pd  # noqa: PLC0415

    rows = []

    def add(obj, privilege, why, check):
        rows.append({"object": obj, "privilege": privilege, "why": why, "check": check})

    for r in _rows(rb, "security.rls_disabled"):
        if r.role_name == "anon":
            add(f"{r.schema_name}.{r.table_name}", r.privileges, "no row-level security: every row",
                "security.rls_disabled")
    for r in _rows(rb, "security.sensitive_columns_exposed"):
        if "anon" in r.readers.split(", "):
            add(f"{r.schema_name}.{r.table_name}.{r.column_name}", "SELECT",
                "a credential-like column without row-level security", "security.sensitive_columns_exposed")
    policies = rb.data("security.policy_always_true")
    for p in always_true_policies(policies) if policies is not None else []:
        if p["writes"] and set(p["roles"]) & {"anon", "public"}:
            r = p["row"]
            add(f"{r.schema_name}.{r.table_name}", r.command, f'policy "{r.policy_name}" is always true',
                "security.policy_always_true")
    for r in _rows(rb, "security.auth_users_exposed"):
        if "anon" in r.readers.split(", ") and (not r.security_invoker
                                                 or "anon" in (r.auth_users_readers or "").split(", ")):
            add(f"{r.schema_name}.{r.view_name}", "SELECT", "exposes auth.users (emails, phones)",
                "security.auth_users_exposed")
    for r in _rows(rb, "security.security_definer_view"):
        if "anon" in (r.readers or "").split(", ") and not r.security_invoker:
            add(f"{r.schema_name}.{r.view_name}", "SELECT", f"view runs as its owner {r.owner}, past RLS",
                "security.security_definer_view")
    for r in _rows(rb, "security.secdef_function_executable"):
        if "anon" in (r.executors or "").split(", "):
            add(f"{r.schema_name}.{r.function_name}({r.arguments})", "EXECUTE",
                f"SECURITY DEFINER: runs as {r.owner}", "security.secdef_function_executable")
    for check in ("security.materialized_view_in_api", "security.foreign_table_in_api"):
        kind = "materialized view" if "materialized" in check else "foreign table"
        for r in _rows(rb, check):
            if r.kind == kind and "anon" in (r.readers or "").split(", "):
                add(f"{r.schema_name}.{r.relation_name}", "SELECT", f"a {kind}: RLS cannot guard it", check)
    for r in _rows(rb, "security.bucket_listing"):
        if r.anon_can_list:
            add(f"storage bucket {r.bucket_id}", f"list {r.anon_scope}",
                "public bucket with a broad SELECT policy (judged from its text)", "security.bucket_listing")
    for r in _rows(rb, "security.queue_exposed"):
        if r.role_name == "anon" and reach(r) and (not r.rls_enabled or r.definer_functions):
            add(f"{r.schema_name}.{r.table_name}", reach(r), "a queue without row-level security",
                "security.queue_exposed")
    return pd.DataFrame(rows, columns=["object", "privilege", "why", "check"])


def show_verdict(rb) -> None:
    """Counts and the worst findings, then the table of what anon can reach."""
    exposed = anon_exposure(rb)
    scope = rb.data("security.scope")
    where = scope.attrs["scope"].describe() if scope is not None else "not connected"
    blind = unseen(rb)
    incomplete = (f" Incomplete: {len(blind)} Supabase check(s) could not see everything ({', '.join(blind)}); "
                  "see their findings for the grant." if blind else "")
    if scope is not None and not scope.attrs["scope"].supabase:
        headline = "Not a Supabase database: nothing is served to anon over a Data API."
    elif len(exposed):
        headline = (f"anon (anyone with the public API key) can reach {'at least ' if blind else ''}"
                    f"{exposed['object'].nunique()} object(s) it should not. {where}.{incomplete}")
    elif blind:
        headline = f"anon can reach nothing it should not, as far as this role can see. {where}.{incomplete}"
    else:
        headline = f"anon can reach nothing it should not. {where}.{incomplete}"
    rb.verdict(headline)
    if len(exposed):
        display.show_html(display.table_html(exposed, max_rows=100))


def show_record(rb) -> None:
    """The recorded metrics as a table (name, value), never a raw dict."""
    import pandas as pd  # noqa: PLC0415

    metrics = record(rb)
    display.show_html(display.table_html(pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())}),
                                         max_rows=len(metrics) + 1))


def record(rb) -> dict:
    """Counts by severity and per check into the sidecar's metrics."""
    mine = [f for f in rb.findings if f.check.startswith("security.")]
    out = {f"security_findings_{k}": v for k, v in counts(mine).items()}
    for cid in CHECKS:
        if cid == "security.scope" or cid not in rb.results:
            continue
        serious = [f for f in rb.results[cid].findings if f.severity.rank >= Severity.WARNING.rank]
        out[f"{cid.replace('.', '_')}_findings"] = len(serious)
    out["security_anon_exposed_objects"] = int(anon_exposure(rb)["object"].nunique())
    for k, v in out.items():
        rb.record(k, v)
    return out


# Checks that share one DataFrame (every policy; every queue table; materialized views with foreign tables): each
# section shows only the rows behind its own findings.
_POLICY_ROWS = {
    "security.policy_rls_disabled": lambda df: df[~df["rls_enabled"].astype(bool)],
    "security.policy_always_true": lambda df: df.loc[[p["row"].Index for p in always_true_policies(df)]],
    "security.rls_initplan": lambda df: df[[bool(on) and bool(per_row_calls(u) or per_row_calls(c))
                                            for on, u, c in zip(df["rls_enabled"], df["using_expr"], df["check_expr"])]],
    "security.rls_user_metadata": lambda df: df[[bool(USER_METADATA.search(f"{u or ''} {c or ''}"))
                                                 for u, c in zip(df["using_expr"], df["check_expr"])]],
    "security.multiple_permissive_policies": lambda df: df[df["permissive"].astype(bool)],
}
_NAME_COLUMNS = ("table_name", "view_name", "relation_name", "object_name", "function_name")
_GRAPHQL_ROLE = {"security.graphql_anon_exposed": "anon", "security.graphql_authenticated_exposed": "authenticated"}
SHARED = {*_POLICY_ROWS, *_GRAPHQL_ROLE, "security.materialized_view_in_api", "security.foreign_table_in_api"}


def section_rows(cid: str, df, findings):
    """The rows of `df` behind this check's findings: none when it found nothing."""
    objects = {o for f in findings if f.severity is not Severity.OK and not f.skipped for o in f.objects}
    if df is None or not hasattr(df, "columns") or not objects:
        return None if df is None or not hasattr(df, "columns") else df.iloc[:0]
    if cid in _POLICY_ROWS:
        df = _POLICY_ROWS[cid](df)
    if cid in _GRAPHQL_ROLE:
        df = df[df["role_name"] == _GRAPHQL_ROLE[cid]]
    name = next((c for c in _NAME_COLUMNS if c in df.columns), None)
    if "schema_name" in df.columns and name:
        df = df[[f"{s}.{n}" in objects for s, n in zip(df["schema_name"], df[name])]]
    return df


def sections(rb, *check_ids: str, columns: dict[str, list[str]] | None = None) -> None:
    """Each check's findings, then the rows behind them (never the same shared table twice); a Supabase check not
    run on plain PostgreSQL says it does not apply."""
    scope = rb.data("security.scope")
    plain = scope is not None and not scope.attrs["scope"].supabase
    for cid in check_ids:
        r = rb.results.get(cid)
        if plain and cid in SUPABASE_CHECKS:
            display.show_html(f'<p class="ob-muted">{display.esc(cid)}: does not apply (no anon/authenticated '
                              "roles: not a Supabase database).</p>")
        elif r is None or cid not in SHARED:
            rb.section(cid, columns=(columns or {}).get(cid))  # its own rows (or why it was not run)
        else:
            markup = display.findings_html(r.findings)
            rows = section_rows(cid, r.data, r.findings)
            if rows is not None and len(rows):
                markup += display.table_html(rows, max_rows=25, columns=(columns or {}).get(cid))
            display.show_html(markup)


def compared_with_advisor(rb):
    """One row per splinter lint id: the advisor's level and what this run found, to match the dashboard."""
    return advisor.comparison(rb.findings, set(rb.results))


def fixes(rb):
    """The SQL that fixes each warning and critical finding, one row each, never run by the runbook."""
    import pandas as pd  # noqa: PLC0415

    rows = [{"severity": f.severity.value, "check": f.check, "object": ", ".join(map(str, f.objects)),
             "fix": f.remediation}
            for f in sorted(rb.findings, key=lambda f: -f.severity.rank)
            if f.check.startswith("security.") and f.severity.rank >= Severity.WARNING.rank and f.remediation]
    return pd.DataFrame(rows, columns=["severity", "check", "object", "fix"])
