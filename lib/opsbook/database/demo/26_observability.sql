-- 003 ObservAI Hub: 100,000 metric samples ingested evenly over 180 days up to a minute ago (half of them older
-- than 90 days: what the guide's archival procedure would move).

INSERT INTO metrics (id, service, name, value, labels, created_at)
SELECT m, service, name,
       round((CASE name WHEN 'http_request_duration_ms' THEN exp(ln(15) + pg_temp.r(m, 603) * ln(120))
                        WHEN 'cpu_percent' THEN 5 + 90 * power(pg_temp.r(m, 603), 1.8)
                        WHEN 'memory_mb' THEN 200 + 3800 * pg_temp.r(m, 603)
                        WHEN 'queue_depth' THEN floor(500 * power(pg_temp.r(m, 603), 4))
                        ELSE 0.05 * power(pg_temp.r(m, 603), 3) END)::numeric, 3)::float8,
       jsonb_build_object('host', service || '-' || pg_temp.ri(m, 604, 1, 4), 'region', 'eu-central-1',
                          'env', 'production'),
       pg_temp.t0() - interval '1 minute' - (100000 - m) * interval '155.52 seconds'
         - pg_temp.r(m, 605) * interval '150 seconds'
FROM generate_series(1, 100000) AS m
CROSS JOIN LATERAL (SELECT pg_temp.pick('{api,api,worker,scraper,edge-functions,postgres}', m, 601) AS service,
                           pg_temp.pick('{http_request_duration_ms,http_request_duration_ms,cpu_percent,memory_mb,
                             queue_depth,error_rate}', m, 602) AS name) AS x;
