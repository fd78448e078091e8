"""The demo application database: a Supabase-shaped app with realistic data and deliberate problems to find."""
from __future__ import annotations

from dataclasses import dataclass

from ...config.file import DEMO_FRESHNESS


@dataclass(frozen=True)
class Problem:
    """A deliberate problem of the demo database, and the check that should find it."""

    check: str
    objects: tuple[str, ...]
    what: str


# What every runbook should find on a fresh demo (built by ensure_demo_database; see 50_problems.sql, faults.py).
PROBLEMS: tuple[Problem, ...] = (
    Problem("indexes.unused", ("public.idx_vehicle_listings_updated_at",),
            "a 24 MB index on vehicle_listings(updated_at) that no query has ever scanned"),
    Problem("indexes.duplicate", ("public.idx_leads_email", "public.leads_email_idx"),
            "two identical indexes on leads(email)"),
    Problem("indexes.invalid", ("public.quotes_quote_number_key",),
            "a unique index whose CREATE INDEX CONCURRENTLY failed on duplicate quote numbers, left invalid"),
    Problem("indexes.unindexed_fk", ("public.vehicle_listings",),
            "vehicle_listings (1.1M rows) references scraping_sessions with no index on scraping_session_id"),
    Problem("sequences.exhaustion", ("public.scraping_logs_id_seq",),
            "scraping_logs.id is an integer identity at 2,147,000,040 of 2,147,483,647 (99.98 %)"),
    Problem("vacuum.dead_tuples", ("public.notifications",),
            "about 130,000 dead tuples next to 100,000 live rows (over 20 MB of bloat) after two mass updates; "
            "autovacuum disabled on the table"),
    Problem("tables.bloat", ("public.notifications",),
            "the same two mass updates left the table about half bloat (some 23 MB of 42 MB)"),
    Problem("vacuum.stale_stats", ("public.automation_jobs",),
            "20,000 rows never analyzed (autovacuum disabled on the table)"),
    Problem("replication.slots", ("analytics_replica",),
            "an inactive physical replication slot holding WAL since the build"),
    Problem("security.rls_disabled", ("public.public_share_tokens", "public.metrics"),
            "public tables without row-level security, fully open to the anon role"),
    Problem("app.freshness", ("public.scraping_sessions", "public.vehicle_listings"),
            "the scraper hung 9 hours ago: no new session, log line or listing since (the guide wants < 4 h)"),
    Problem("queries.slow", ("public.automation_jobs",),
            "the automation workers' job claim (FOR UPDATE without SKIP LOCKED) queues behind the other workers: "
            "over 100 calls averaging well over 100 ms; and, under the call threshold, a sequential-scan listing "
            "search and a one-second market-report aggregate on vehicle_listings"),
    Problem("security.failed_logins", ("185.220.101.37",),
            "60 failed sign-ins in the last hour from 185.220.101.37 against five accounts"),
    Problem("security.sensitive_columns_exposed", ("public.public_share_tokens",),
            "the share tokens (column token) are readable by anon: the table has no row-level security"),
    Problem("security.bucket_listing", ("vehicle-photos", "avatars"),
            "the two public buckets have a SELECT policy for anon, written as a subquery on storage.buckets, "
            "that lets anyone list every object"),
    Problem("security.rls_initplan", ("public.interactions", "public.saved_searches", "public.notifications"),
            "four policies call auth.uid() bare, once per row, as the guides write them"),
    Problem("security.policy_always_true", ("public.analytics_events",),
            "anon and authenticated may insert any analytics event (WITH CHECK (true))"),
    Problem("security.default_privileges", ("postgres:public:tables",),
            "Supabase's default privileges grant every future public table and sequence to anon"),
)

FRESHNESS = DEMO_FRESHNESS  # the demo target's freshness rules live with its definition (config.file)

# The incident the post-mortem runbook records on the demo (incident.postmortem.recorded.ensure_recorded: activity
# samples into the history, the server's own log): its known cause, and what else the window shows.
RECORDED_PROBLEMS: tuple[Problem, ...] = (
    Problem("postmortem.root_cause", ("report_job", "public.pm_branches"),
            "application report_job updates a pm_branches row and stays idle in transaction; four checkout_api "
            "sessions queue behind it and eight of their updates are cancelled by a 700 ms statement_timeout"),
    Problem("postmortem.timeouts", ("checkout_api",), "the eight cancelled checkout_api updates"),
    Problem("postmortem.connections", ("burst_worker",),
            "a burst of six connections as burst_worker against its CONNECTION LIMIT of 3: three refused"),
)

# What live_faults() adds while it runs (the incident-triage demo).
LIVE_PROBLEMS: tuple[Problem, ...] = (
    Problem("locks.blocking", ("public.leads",), "a demo-worker session blocks two demo-api sessions"),
    Problem("activity.idle_in_transaction", ("demo-worker",), "a session idle in transaction holding a row lock"),
    Problem("activity.long_running", ("demo-report",), "a pg_sleep statement running"),
)

# live_faults() lives for two minutes, the checks' defaults wait five: the demo's incident-triage run passes these
# (its `thresholds` parameter) so that the young idle transaction and the running pg_sleep show as findings.
LIVE_THRESHOLDS: dict[str, dict] = {
    "activity.idle_in_transaction": {"warning": 2},
    "activity.long_running": {"warning": 2},
}

__all__ = ["PROBLEMS", "LIVE_PROBLEMS", "RECORDED_PROBLEMS", "LIVE_THRESHOLDS", "FRESHNESS", "Problem", "ensure_demo_database", "live_faults"]


def __getattr__(name: str):
    """The builders need psycopg: imported on first use, so that `from opsbook.database.demo import PROBLEMS` stays light."""
    if name == "ensure_demo_database":
        from .build import ensure_demo_database as found  # noqa: PLC0415
    elif name == "live_faults":
        from .live import live_faults as found  # noqa: PLC0415
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = found
    return found
