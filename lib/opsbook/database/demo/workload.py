"""A recorded app workload: a few thousand requests like the five apps send, so pg_stat_statements has a story."""
from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid

import psycopg
from psycopg.types.numeric import Int8

SEED = 42
REQUESTS = 2400
APPLICATION_NAME = "demo-app"
ACTIVE_USERS = [str(uuid.UUID(hashlib.md5(f"user-{n}".encode()).hexdigest())) for n in range(3, 10001, 3)]
STAFF = [(str(uuid.UUID(hashlib.md5(f"user-{12 * j + 1}".encode()).hexdigest())), 1 + j % 120) for j in range(720)]

# Each request: (weight, role, SQL). PostgREST runs a request as one transaction with the role and JWT claims set
# locally; `:user` / `:staff` pick whose request it is and the function in PARAMS what the parameters are.
REQUESTS_MIX = {
    "profile": (8, "authenticated", "SELECT id, full_name, avatar_url, role FROM profiles WHERE id = %s"),
    "notifications": (10, "authenticated", "SELECT id, title, body, status, read_at, created_at FROM notifications "
                      "WHERE user_id = %s ORDER BY created_at DESC LIMIT 20"),
    "unread": (8, "authenticated", "SELECT count(*) FROM notifications WHERE user_id = %s AND read_at IS NULL"),
    "conversations": (6, "authenticated", "SELECT id, title, model, updated_at FROM conversations WHERE user_id = %s "
                      "ORDER BY updated_at DESC LIMIT 20"),
    "messages": (8, "authenticated", "SELECT role, content, created_at FROM messages WHERE conversation_id = %s "
                 "ORDER BY created_at"),
    "send_message": (4, "authenticated", "INSERT INTO messages (conversation_id, role, content, tokens) "
                     "VALUES (%s, 'user', %s, %s) RETURNING id"),
    "saved_searches": (4, "authenticated", "SELECT id, name, criteria, push_enabled FROM saved_searches "
                       "WHERE user_id = %s ORDER BY created_at DESC"),
    "valuations": (3, "authenticated", "SELECT id, make, model, year, estimated_value_eur, pdf_path, created_at "
                   "FROM valuations WHERE user_id = %s ORDER BY created_at DESC"),
    "tickets": (2, "authenticated", "SELECT id, subject, priority, status, created_at FROM support_tickets "
                "WHERE user_id = %s ORDER BY created_at DESC"),
    "track_event": (8, "authenticated", "INSERT INTO analytics_events (user_id, event_type, name, properties) "
                    "VALUES (%s, 'page_view', %s, %s)"),
    "listing_search": (10, "anon", "SELECT id, make, model, year, price_eur, mileage_km, city FROM vehicle_listings "
                       "WHERE make = %s AND model = %s AND price_eur <= %s ORDER BY created_at DESC LIMIT 50"),
    "listing": (8, "anon", "SELECT * FROM vehicle_listings WHERE id = %s"),
    "leads": (5, "staff", "SELECT id, full_name, status, source, created_at FROM leads "
              "WHERE dealership_id = %s AND status = %s ORDER BY created_at DESC LIMIT 50"),
    "lead_by_email": (3, "service_role", "SELECT id, full_name, status, dealership_id FROM leads WHERE email = %s"),
    "lead_history": (4, "service_role", "SELECT channel, direction, body, created_at FROM interactions "
                     "WHERE lead_id = %s ORDER BY created_at DESC LIMIT 50"),
    "lead_status": (2, "service_role", "UPDATE leads SET status = %s, updated_at = now() WHERE id = %s"),
    "log_interaction": (2, "service_role", "INSERT INTO interactions (lead_id, channel, direction, body, ai_generated) "
                        "VALUES (%s, 'chat', 'outbound', %s, true)"),
    "share_token": (3, "service_role", "SELECT v.make, v.model, v.year, v.estimated_value_eur, t.expires_at "
                    "FROM public_share_tokens t JOIN valuations v ON v.id = t.valuation_id "
                    "WHERE t.token = %s AND t.expires_at > now()"),
    "function_call": (6, "service_role", "INSERT INTO analytics_events (user_id, event_type, name, execution_time_ms) "
                      "VALUES (%s, 'function_invocation', %s, %s)"),
    "ingest_metric": (10, "service_role", "INSERT INTO metrics (service, name, value, labels) VALUES (%s, %s, %s, %s)"),
    "metric_chart": (2, "service_role", "SELECT date_trunc('hour', created_at) AS hour, avg(value), max(value) "
                     "FROM metrics WHERE service = %s AND name = %s AND created_at > now() - interval '24 hours' "
                     "GROUP BY 1 ORDER BY 1"),
    "enqueue_job": (3, "service_role", "INSERT INTO automation_jobs (workflow_id, status) VALUES (%s, 'queued')"),
}
# Dashboards and reports the on-call engineers and managers look at; fixed counts, run after the requests.
REPORTS = [
    (20, "SELECT status, count(*), max(started_at) FROM scraping_sessions "
         "WHERE started_at > now() - interval '7 days' GROUP BY status ORDER BY status", ()),
    (5, "SELECT count(*), max(created_at) FROM vehicle_listings WHERE is_active = true", ()),
    (10, "SELECT count(*) FROM notifications WHERE created_at > now() - interval '7 days'", ()),
    (10, "SELECT id, session_id, message, created_at FROM scraping_logs WHERE log_level = 'ERROR' "
         "AND created_at > now() - interval '7 days' ORDER BY created_at DESC", ()),
    (4, "SELECT bucket_id, count(*) AS objects, sum((metadata ->> 'size')::bigint) AS size_bytes "
        "FROM storage.objects GROUP BY bucket_id ORDER BY bucket_id", ()),
    (4, "SELECT count(DISTINCT payload ->> 'actor_id') FROM auth.audit_log_entries "
        "WHERE payload ->> 'action' = 'login' AND created_at > now() - interval '30 days'", ()),
    (6, "SELECT date_trunc('day', created_at) AS day, count(*) AS function_invocations, "
        "sum(execution_time_ms) AS total_execution_time FROM analytics_events "
        "WHERE event_type = 'function_invocation' AND created_at > now() - interval '30 days' "
        "GROUP BY day ORDER BY day DESC", ()),
    # deliberately slow: a dealer "market scan" on columns without an index (sequential scan of 1.1M rows) ...
    (12, "SELECT id, make, model, year, price_eur FROM vehicle_listings WHERE lower(make || ' ' || model) LIKE %s "
         "AND city = %s AND mileage_km < %s ORDER BY price_eur LIMIT 50", ("%golf%", "Leipzig", Int8(60000))),
    # ... and the monthly market report: a heavy aggregate over the whole table
    (1, "SELECT make, model, year, count(*) AS listings, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY price_eur) AS median_price_eur, "
        "avg(mileage_km)::int AS avg_mileage_km FROM vehicle_listings GROUP BY make, model, year "
        "ORDER BY listings DESC", ()),
]


def run(build_conn: psycopg.Connection, conninfo: str) -> str:
    """Reset this database's statement statistics, then play the requests and reports on a connection of their own."""
    if _pgss_loaded(build_conn):
        build_conn.execute("SELECT extensions.pg_stat_statements_reset(0, "
                           "(SELECT oid FROM pg_database WHERE datname = current_database()), 0)")
    pools = _pools(build_conn)
    rng = random.Random(SEED)
    names = list(REQUESTS_MIX)
    weights = [REQUESTS_MIX[n][0] for n in names]
    with psycopg.connect(conninfo, autocommit=True, application_name=APPLICATION_NAME) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        with conn.pipeline():  # the requests' results are not needed: send them without waiting for each
            for name in rng.choices(names, weights, k=REQUESTS):
                _, role, query = REQUESTS_MIX[name]
                sub, params = _params(name, rng, pools)
                # one parameter type per statement: psycopg would send small ints as int2, others as int4
                params = tuple(Int8(p) if isinstance(p, int) else p for p in params)
                with conn.transaction():
                    conn.execute("SELECT set_config('role', %s, true), "
                                 "set_config('request.jwt.claim.sub', %s, true)",
                                 ("authenticated" if role == "staff" else role, sub))
                    conn.execute(query, params)
        statements = REQUESTS
        conn.execute("SET ROLE service_role")  # dashboards and reports run with the service key
        for times, query, params in REPORTS:
            for _ in range(times):
                conn.execute(query, params or None)
            statements += times
    statements += job_convoy(conninfo)
    return f"{statements:,} statements"


# The automation workers claim the oldest queued job with FOR UPDATE but without SKIP LOCKED, then call the
# integration while holding the row lock: each claim queues behind the other workers' (a real lock convoy, and
# the statement pg_stat_statements shows as slow: about WORKERS x HOLD_S per call, at almost no CPU cost).
WORKERS = 10
HOLD_S = 0.02
NIGHTLY_JOBS = 40
CLAIM = ("SELECT id, workflow_id FROM automation_jobs WHERE status = 'queued' ORDER BY created_at LIMIT 1 "
         "FOR UPDATE")
FINISH = ("UPDATE automation_jobs SET status = 'succeeded', started_at = now(), finished_at = now(), "
          "updated_at = now(), result = %s WHERE id = %s")


def job_convoy(conninfo: str) -> int:
    """Enqueue the nightly sync's jobs, then let the workers drain the queue; returns the statements run."""
    with psycopg.connect(conninfo, autocommit=True, application_name=APPLICATION_NAME) as conn:
        conn.execute("INSERT INTO automation_jobs (workflow_id, status, created_at) "
                     "SELECT 1 + g %% 200, 'queued', now() - g * interval '1 second' FROM generate_series(1, %s) g",
                     (NIGHTLY_JOBS,))
    counts = [0] * WORKERS
    failures: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            drain(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failures.append(e)

    def drain(i: int) -> None:
        with psycopg.connect(conninfo, application_name=f"{APPLICATION_NAME}-worker") as conn:
            while True:
                with conn.transaction():
                    conn.execute("SELECT set_config('role', 'service_role', true)")
                    job = conn.execute(CLAIM).fetchone()
                    counts[i] += 1
                    if job is None:
                        return
                    time.sleep(HOLD_S)  # the integration call, made while the row stays locked
                    conn.execute(FINISH, (json.dumps({"items_processed": job[1] % 50}), job[0]))
                    counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return 1 + sum(counts)


def _pgss_loaded(conn: psycopg.Connection) -> bool:
    libs = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
    return "pg_stat_statements" in libs


def _pools(conn: psycopg.Connection) -> dict[str, list]:
    """Rows the requests pick from, read in a fixed order so that the same seed plays the same requests."""
    def col(query: str) -> list:
        return [r[0] if len(r) == 1 else r for r in conn.execute(query).fetchall()]

    return {
        "conversations": col("SELECT id::text, user_id::text FROM conversations ORDER BY id LIMIT 3000"),
        "leads": col("SELECT id FROM leads ORDER BY id"),
        "emails": col("SELECT email FROM leads ORDER BY id LIMIT 2000"),
        "tokens": col("SELECT token FROM public_share_tokens ORDER BY id LIMIT 1000"),
        "models": col("SELECT make, model FROM vehicle_listings WHERE id <= 5000 GROUP BY 1, 2 ORDER BY 1, 2"),
        "workflows": col("SELECT id FROM automation_workflows ORDER BY id"),
    }


def _params(name: str, rng: random.Random, pools: dict) -> tuple[str, tuple]:
    """(the JWT subject, the statement's parameters) for one request."""
    user = rng.choice(ACTIVE_USERS)
    if name in ("profile", "notifications", "unread", "conversations", "saved_searches", "valuations", "tickets"):
        return user, (user,)
    if name in ("messages", "send_message"):
        conv, owner = rng.choice(pools["conversations"])
        if name == "messages":
            return owner, (conv,)
        text = "Can you " + rng.choice(["summarise", "rewrite", "translate", "check"]) + " this? " * rng.randint(1, 30)
        return owner, (conv, text, len(text) // 4)
    if name == "track_event":
        return user, (user, rng.choice(["/dashboard", "/chat", "/listings", "/tickets"]),
                      json.dumps({"platform": rng.choice(["web", "ios", "android"])}))
    if name == "listing_search":
        make, model = rng.choice(pools["models"])
        return "", (make, model, rng.randrange(8000, 60000, 1000))
    if name == "listing":
        return "", (rng.randint(1, 1_100_000),)
    if name == "leads":
        staff, dealership = rng.choice(STAFF)
        return staff, (dealership, rng.choice(["new", "contacted", "qualified", "negotiation"]))
    if name == "lead_by_email":
        return "", (rng.choice(pools["emails"]),)
    if name in ("lead_history", "log_interaction", "lead_status"):
        lead = rng.choice(pools["leads"])
        if name == "lead_history":
            return "", (lead,)
        if name == "lead_status":
            return "", (rng.choice(["contacted", "qualified", "negotiation", "won", "lost"]), lead)
        return "", (lead, "Thanks for your interest! " * rng.randint(1, 12))
    if name == "share_token":
        return "", (rng.choice(pools["tokens"]),)
    if name == "function_call":
        return "", (user, rng.choice(["chat-completion", "send-email", "run-automation"]), rng.randint(40, 9000))
    if name == "ingest_metric":
        service = rng.choice(["api", "worker", "edge-functions", "postgres"])
        return "", (service, rng.choice(["http_request_duration_ms", "cpu_percent", "queue_depth"]),
                    round(rng.uniform(1, 500), 3), json.dumps({"host": f"{service}-{rng.randint(1, 4)}"}))
    if name == "metric_chart":
        return "", (rng.choice(["api", "worker", "scraper"]), rng.choice(["http_request_duration_ms", "cpu_percent"]))
    return "", (rng.choice(pools["workflows"]),)  # enqueue_job
