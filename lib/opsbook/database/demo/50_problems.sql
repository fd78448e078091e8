-- Deliberate problems made with plain DDL (the others need their own connection: faults.py). Each is listed,
-- with the check that should find it, in opsbook.database.demo.PROBLEMS.

-- indexes.unused: 24 MB on the largest table, for a sync job that was removed; no query uses it.
CREATE INDEX idx_vehicle_listings_updated_at ON vehicle_listings (updated_at);

-- indexes.duplicate: a later migration added the same index on leads.email under another name.
CREATE INDEX leads_email_idx ON leads (email);

-- indexes.unindexed_fk: vehicle_listings.scraping_session_id references scraping_sessions with no index
-- on the referencing side (a DELETE of a session scans 1.1 million rows).
ALTER TABLE vehicle_listings ADD CONSTRAINT vehicle_listings_scraping_session_id_fkey
  FOREIGN KEY (scraping_session_id) REFERENCES scraping_sessions (id);

-- security.rls_disabled: share tokens and ingested metrics are readable and writable by anon.
-- (45_security.sql's ENABLE ROW LEVEL SECURITY loop leaves them out.)

-- sequences.exhaustion: scraping_logs.id is an integer; a bulk import jumped its sequence to 2,147,000,000:
-- 99.98% of the integer range is used. The hung scrape's last log lines took the next ids.
SELECT setval(pg_get_serial_sequence('scraping_logs', 'id'), 2147000000);
INSERT INTO scraping_logs (session_id, log_level, message, created_at)
SELECT 4320, CASE WHEN g % 10 = 0 THEN 'WARN' ELSE 'INFO' END,
       CASE WHEN g % 10 = 0 THEN 'Still waiting for search page, attempt ' || g / 10
            ELSE 'Fetched page ' || g || ' of search results: ' || 20 + g % 17 || ' listings parsed' END,
       pg_temp.session_start(4320) + g * interval '20 seconds'
FROM generate_series(1, 40) AS g;

-- vacuum.dead_tuples: autovacuum is off on notifications; faults.py then rewrites most of its rows.
ALTER TABLE notifications SET (autovacuum_enabled = false);
-- vacuum.stale_stats: automation_jobs was created with autovacuum off and is never analyzed
-- (10_tables.sql); app.freshness: scraping_sessions' newest row is 9 hours old (23_scraper.sql).
