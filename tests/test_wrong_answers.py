"""Wrong or missing answers, each against the real thing on each server version: a sequence judged by every
column it feeds, tables without statistics, indexes a foreign key needs, the used twin kept, MAU defined once,
and plain PostgreSQL told apart from a missing privilege."""
from __future__ import annotations

import psycopg
import pytest

from opsbook.context import Runbook


def run(db, *check_ids, **thresholds):
    rb = Runbook("capacity-planning", "test", config=db.config(), thresholds=thresholds)
    assert rb.connect() is not None
    rb.run(check_ids)
    rb.close()
    return rb


def of(rb, check_id):
    return [f for f in rb.findings if f.check == check_id]


def test_a_sequence_is_judged_by_every_column_it_feeds(any_db):
    """pghero and postgres-checkup flag it: the owner is bigint, a second column fed by the same sequence is int4."""
    any_db.execute("""
        CREATE TABLE owner_t (id bigserial PRIMARY KEY);
        CREATE TABLE narrow_t (id int PRIMARY KEY DEFAULT nextval('owner_t_id_seq'));
        CREATE TABLE wide_too (id bigint PRIMARY KEY DEFAULT nextval('owner_t_id_seq'));
        SELECT setval('owner_t_id_seq', 2100000000);  -- 97.79% of int4
        CREATE TABLE calm_t (id serial PRIMARY KEY);
    """)
    rb = run(any_db, "sequences.exhaustion")
    [f] = of(rb, "sequences.exhaustion")
    assert (f.severity.value, f.objects) == ("critical", ["public.owner_t_id_seq", "public.narrow_t.id"])
    assert "97.8%" in f.title and "feeds 3 columns" in f.detail and "public.owner_t.id (bigint)" in f.detail
    assert "ALTER TABLE public.narrow_t ALTER COLUMN id TYPE bigint" in f.remediation
    df = rb.data("sequences.exhaustion").set_index("sequence_name")
    assert len(df) == 2 and df.loc["owner_t_id_seq", "fed_count"] == 3 and df.loc["calm_t_id_seq", "fed_count"] == 1
