"""Security checks (the security-audit runbook): what anon can read or change, RLS, roles, failed sign-ins."""
from __future__ import annotations

from . import buckets, exposure, logins, rls, roles, scope  # noqa: F401 - importing registers the checks
