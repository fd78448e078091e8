"""Public Storage buckets whose objects anon can list, judged from the policies' text (subqueries included) and
the catalogue: a policy is code written by the database's users, and is never run with opsbook's privileges."""
from __future__ import annotations

import re

from ...core.errors import SkipCheck
from ...core.findings import Finding, Severity
from ..registry import Check, CheckContext, register
from .scope import require_api_roles

JUDGED_FROM_TEXT = ("Judged from the policies' text and the catalogue; opsbook never runs a policy, whose functions "
                    "would run with its privileges.")
# A policy that depends on who asks cannot let an anonymous client list everything.
_USER_DEPENDENT = re.compile(r"auth\.|\buid\(\)|current_setting|current_user|session_user|\bowner\b|owner_id|"
                             r"jwt", re.I)
_BUCKET_REF = re.compile(r"bucket_id", re.I)
_PUBLIC_SUBQUERY = re.compile(r"select\b.*\bbuckets\b.*\bpublic\b", re.I | re.S)


def policy_lists(using_expr, bucket_id: str) -> bool:
    """Whether a SELECT policy's USING lets anyone list `bucket_id`, whoever they are (text analysis)."""
    if using_expr is None or using_expr != using_expr:
        return True
    text = str(using_expr)
    if _USER_DEPENDENT.search(text):
        return False
    if not _BUCKET_REF.search(text):
        return True  # constant true, or a condition that never looks at the bucket
    literal = "'" + bucket_id.replace("'", "''") + "'"
    return literal in text or bool(_PUBLIC_SUBQUERY.search(text))


# A condition that keeps listing to one folder, as pg_get_expr writes it: name LIKE 'public/%' (~~),
# starts_with(name, 'public/'), name ^@ 'public/', (storage.foldername(name))[1] = 'public'.
_LIKE = re.compile(r"\bname\s+~~\s+'((?:[^'%_\\]|'')*)%'", re.I)
_STARTS = re.compile(r"(?:starts_with\(\s*name\s*,\s*|\bname\s+\^@\s+)'((?:[^']|'')+)'", re.I)
_FOLDER = re.compile(r"foldername\(name\)\)\[1\]\s*=\s*'((?:[^']|'')+)'", re.I)


def listing_prefix(using_expr) -> str | None:
    """The name prefix a listing policy keeps clients to ('public/'), or None when it keeps them to none (no such
    condition, or one OR-ed with others: then it is not a limit)."""
    if using_expr is None or using_expr != using_expr or re.search(r"\bOR\b", str(using_expr), re.I):
        return None
    text = str(using_expr)
    for pattern, suffix in ((_LIKE, ""), (_STARTS, ""), (_FOLDER, "/")):
        m = pattern.search(text)
        if m and m.group(1):
            return m.group(1).replace("''", "'") + suffix
    return None


def listing_scope(using_exprs) -> str:
    """'every object', or which prefixes, for the policies that let a role list a bucket."""
    prefixes = [listing_prefix(e) for e in using_exprs]
    if not prefixes or None in prefixes:
        return "every object"
    return "objects under " + ", ".join(sorted(set(prefixes)))


def bucket_listing(ctx: CheckContext):
    """Per public bucket, whether anon (or any signed-in user) can list its objects, read from the storage.objects
    policies' text and the catalogue. Never by running a policy: its functions would run with opsbook's privileges
    (a `SET ROLE` from opsbook's session is undone by one `RESET ROLE` inside such a function)."""
    import pandas as pd  # noqa: PLC0415

    s = require_api_roles(ctx)
    if not s.has_storage_tables:
        raise SkipCheck("does not apply: there is no storage.buckets/storage.objects (no Supabase Storage here)")
    if not s.can_read_storage_tables:  # which buckets are public is Storage's data, not the catalogue's
        from ...database.supabase import require_readable  # noqa: PLC0415

        require_readable(ctx.db, "storage", ["storage.buckets", "storage.objects"])
    buckets = ctx.db.fetch("security/public_buckets")
    policies = ctx.db.fetch("security/storage_policies")
    rows = []
    for b in buckets.itertuples():
        broad = [p for p in policies.itertuples()
                 if set(p.roles) & {"public", "anon"} and policy_lists(p.using_expr, b.bucket_id)]
        signed_in = [p for p in policies.itertuples()
                     if set(p.roles) & {"public", "authenticated"} and policy_lists(p.using_expr, b.bucket_id)]
        rows.append({"bucket_id": b.bucket_id, "bucket_name": b.bucket_name, "objects_seen": b.objects_seen,
                     "anon_can_list": bool(broad), "broad_policies": ", ".join(p.policy_name for p in broad),
                     "anon_scope": listing_scope([p.using_expr for p in broad]) if broad else "",
                     "signed_in_policies": ", ".join(p.policy_name for p in signed_in),
                     "signed_in_scope": listing_scope([p.using_expr for p in signed_in]) if signed_in else ""})
    df = pd.DataFrame(rows, columns=["bucket_id", "bucket_name", "objects_seen", "anon_can_list", "broad_policies",
                                     "anon_scope", "signed_in_policies", "signed_in_scope"])
    df.attrs["note"] = JUDGED_FROM_TEXT
    return df


def judge_bucket_listing(df) -> list[Finding]:
    note = df.attrs.get("note", "")
    out = []
    for r in df.itertuples():
        if r.anon_can_list:
            how = f"policies {r.broad_policies} let anyone read {r.anon_scope}"
            out.append(Finding("security.bucket_listing", Severity.WARNING,
                               f"public bucket {r.bucket_id}: anon can list {r.anon_scope}",
                               detail=f"Public buckets serve files by URL without any policy; a broad SELECT policy "
                                      f"on storage.objects also lets clients enumerate them ({how}). "
                                      f"{note}".strip(),
                               objects=[f"bucket:{r.bucket_id}"],
                               remediation="DROP POLICY ... ON storage.objects;  -- the broad SELECT policy "
                                           f"({r.broad_policies or 'see the table'}); public URLs keep working, or "
                                           f"narrow it: USING (bucket_id = '{r.bucket_id}' AND owner = "
                                           "(SELECT auth.uid()))"))
        elif r.signed_in_policies:
            # splinter 0025's level (WARN): with open sign-up, `authenticated` is anyone with an email address
            out.append(Finding("security.bucket_listing", Severity.WARNING,
                               f"public bucket {r.bucket_id}: any signed-in user can list {r.signed_in_scope}",
                               detail=f"Policies {r.signed_in_policies} (authenticated) do not depend on the user, "
                                      "and anyone can sign up; public URLs do not need them. " + note,
                               objects=[f"bucket:{r.bucket_id}"],
                               remediation="DROP POLICY ... ON storage.objects;  -- the broad SELECT policy "
                                           f"({r.signed_in_policies}); or narrow it: USING (bucket_id = "
                                           f"'{r.bucket_id}' AND owner = (SELECT auth.uid()))"))
    return out or [Finding("security.bucket_listing", Severity.OK,
                           f"no public bucket anon can list ({len(df)} public)", detail=note)]


BUCKET_LISTING = register(Check(
    id="security.bucket_listing",
    description="Public Storage buckets whose objects anon or any signed-in user can list, and under which "
                "prefix, judged from the storage.objects policies' text, subqueries included (splinter 0025, WARN); "
                "no policy is ever run with opsbook's privileges.",
    data=bucket_listing, judge=judge_bucket_listing,
    queries=("security/public_buckets", "security/storage_policies"), runbooks=("security-audit",)))
