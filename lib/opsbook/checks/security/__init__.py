"""Security checks (the security-audit runbook): what anon can read or change, RLS, roles, failed sign-ins."""
from __future__ import annotations

from . import (auth_keys, buckets, exposure, graphql, logins, queues, rls, roles, scope,  # noqa: F401 - registers
               upgrades)
