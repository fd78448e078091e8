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
                             r"foldername|jwt", re.I)
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
        broad = [p.policy_name for p in policies.itertuples()
                 if set(p.roles) & {"public", "anon"} and policy_lists(p.using_expr, b.bucket_id)]
        signed_in = [p.policy_name for p in policies.itertuples()
                     if "authenticated" in p.roles and policy_lists(p.using_expr, b.bucket_id)]
        rows.append({"bucket_id": b.bucket_id, "bucket_name": b.bucket_name, "objects_seen": b.objects_seen,
                     "anon_can_list": bool(broad), "broad_policies": ", ".join(broad),
                     "signed_in_policies": ", ".join(signed_in)})
    df = pd.DataFrame(rows, columns=["bucket_id", "bucket_name", "objects_seen", "anon_can_list", "broad_policies",
                                     "signed_in_policies"])
    df.attrs["note"] = JUDGED_FROM_TEXT
    return df


def judge_bucket_listing(df) -> list[Finding]:
    note = df.attrs.get("note", "")
    out = []
    for r in df.itertuples():
        if r.anon_can_list:
            how = f"policies {r.broad_policies} let anyone read every row"
            out.append(Finding("security.bucket_listing", Severity.WARNING,
                               f"public bucket {r.bucket_id}: anon can list every object",
                               detail=f"Public buckets serve files by URL without any policy; a broad SELECT policy "
                                      f"on storage.objects also lets clients enumerate them ({how}). "
                                      f"{note}".strip(),
                               objects=[f"bucket:{r.bucket_id}"],
                               remediation="DROP POLICY ... ON storage.objects;  -- the broad SELECT policy "
                                           f"({r.broad_policies or 'see the table'}); public URLs keep working, or "
                                           f"narrow it: USING (bucket_id = '{r.bucket_id}' AND owner = "
                                           "(SELECT auth.uid()))"))
        elif r.signed_in_policies:
            out.append(Finding("security.bucket_listing", Severity.INFO,
                               f"public bucket {r.bucket_id}: any signed-in user can list every object",
                               detail=f"Policies {r.signed_in_policies} (authenticated) do not depend on the user; "
                                      "anyone can sign up. " + note, objects=[f"bucket:{r.bucket_id}"]))
    return out or [Finding("security.bucket_listing", Severity.OK,
                           f"no public bucket anon can list ({len(df)} public)", detail=note)]


BUCKET_LISTING = register(Check(
    id="security.bucket_listing",
    description="Public Storage buckets whose objects anon can list, judged from the storage.objects policies' "
                "text, subqueries included (splinter 0025); no policy is ever run with opsbook's privileges.",
    data=bucket_listing, judge=judge_bucket_listing,
    queries=("security/public_buckets", "security/storage_policies"), runbooks=("security-audit",)))
