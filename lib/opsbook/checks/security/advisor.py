"""Supabase's Security Advisor (splinter) lint by lint: which opsbook check answers each, at which level, and why a
level differs; the report's comparison table is built from it."""
from __future__ import annotations

# (lint, splinter name, splinter level, opsbook check, the reason where opsbook's severity or scope differs)
LINTS = [
    ("0001", "unindexed_foreign_keys", "INFO", "indexes.unindexed_fk", "capacity-planning runs it (performance)"),
    ("0002", "auth_users_exposed", "ERROR", "security.auth_users_exposed",
     ("critical; a security_invoker view whose readers may not read auth.users is a warning: nothing is readable "
      "through it until that grant")),
    ("0003", "auth_rls_initplan", "WARN", "security.rls_initplan",
     "also current_setting(); realtime and storage policies included, as in splinter"),
    ("0004", "no_primary_key", "INFO", "tables.no_primary_key",
     "capacity-planning runs it (performance); a partitioned table judged once, not partition by partition"),
    ("0005", "unused_index", "INFO", "indexes.unused", "capacity-planning runs it (performance)"),
    ("0006", "multiple_permissive_policies", "WARN", "security.multiple_permissive_policies",
     "realtime and storage policies included (splinter leaves them out)"),
    ("0007", "policy_exists_rls_disabled", "ERROR", "security.policy_rls_disabled", ""),
    ("0008", "rls_enabled_no_policy", "INFO", "security.rls_no_policy", ""),
    ("0009", "duplicate_index", "WARN", "indexes.duplicate", "capacity-planning runs it (performance)"),
    ("0010", "security_definer_view", "ERROR", "security.security_definer_view", ""),
    ("0011", "function_search_path_mutable", "WARN", "security.function_search_path", ""),
    ("0012", "auth_allow_anonymous_sign_ins", "WARN", "",
     "Supabase Auth's settings, outside the database: opsbook cannot see them"),
    ("0013", "rls_disabled_in_public", "ERROR", "security.rls_disabled",
     "also column-only grants and partitioned parents"),
    ("0014", "extension_in_public", "WARN", "security.extension_in_public", ""),
    ("0015", "rls_references_user_metadata", "ERROR", "security.rls_user_metadata", ""),
    ("0016", "materialized_view_in_api", "WARN", "security.materialized_view_in_api", ""),
    ("0017", "foreign_table_in_api", "WARN", "security.foreign_table_in_api", ""),
    ("0018", "unsupported_reg_types", "WARN", "security.unsupported_reg_types", "arrays of reg* types too"),
    ("0019", "insecure_queue_exposed_in_api", "ERROR", "security.queue_exposed",
     "also archive tables, direct exposure of schema pgmq and SECURITY DEFINER pgmq_public functions"),
    ("0020", "table_bloat", "INFO", "tables.bloat", "capacity-planning runs it (performance)"),
    ("0021", "fkey_to_auth_unique", "ERROR", "security.auth_unique_fkey", ""),
    ("0022", "extension_versions_outdated", "WARN", "security.extension_outdated", ""),
    ("0023", "sensitive_columns_exposed", "ERROR", "security.sensitive_columns_exposed",
     "also names holding a listed word (password_hash), and column-only grants"),
    ("0024", "rls_policy_always_true", "WARN", "security.policy_always_true",
     "warning for writes; a constant-true read policy is info (public read may be intended)"),
    ("0025", "public_bucket_allows_listing", "WARN", "security.bucket_listing",
     "subquery policies too; a prefix-limited policy says its prefix"),
    ("0026", "pg_graphql_anon_table_exposed", "WARN", "security.graphql_anon_exposed",
     "needs USAGE on the schema as well"),
    ("0027", "pg_graphql_authenticated_table_exposed", "WARN", "security.graphql_authenticated_exposed",
     "needs USAGE on the schema as well"),
    ("0028", "anon_security_definer_function_executable", "WARN", "security.secdef_function_executable", ""),
    ("0029", "authenticated_security_definer_function_executable", "WARN", "security.secdef_function_executable",
     ""),
]
LEVELS = {"ERROR": "critical", "WARN": "warning", "INFO": "info"}


def comparison(findings, ran: set[str]):
    """One row per lint: the advisor's level, what opsbook found (worst severity, count) and why they differ."""
    import pandas as pd  # noqa: PLC0415

    rows = []
    for lint, name, level, check, note in LINTS:
        mine = [f for f in findings if f.check == check]
        serious = [f for f in mine if f.severity.value != "ok" and not f.skipped]
        if not check:
            found = "-"
        elif check not in ran:
            found = "not run here" if check.startswith("security.") else "see capacity-planning"
        elif any(f.title.startswith("not applicable") for f in mine):
            found = "not applicable here"
        elif any(f.skipped for f in mine):
            found = "not judged: " + next(f.skipped for f in mine if f.skipped)
        elif serious:
            worst = max(serious, key=lambda f: f.severity.rank).severity.value
            found = f"{len(serious)} {worst}" + ("" if worst == LEVELS[level] else f" (advisor: {LEVELS[level]})")
        else:
            found = "none"
        rows.append({"lint": lint, "advisor name": name, "advisor level": level, "opsbook check": check or "-",
                     "opsbook found": found, "difference": note})
    return pd.DataFrame(rows, columns=["lint", "advisor name", "advisor level", "opsbook check", "opsbook found",
                                       "difference"])
