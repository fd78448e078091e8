-- 000 Auto Scouter: a scrape every 30 minutes for 90 days (the last one hung 9 hours ago), 1.1 million
-- listings in scrape order, the scraper's log, saved searches and the push notifications they caused.

CREATE FUNCTION pg_temp.session_failed(k bigint) RETURNS boolean LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.r(k, 300) < 0.04 $$;
CREATE FUNCTION pg_temp.search_age(s bigint) RETURNS float8 LANGUAGE sql STABLE
  AS $$ SELECT 300 * power(pg_temp.r(s, 330), 1.3) $$;
CREATE FUNCTION pg_temp.search_user(s bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.active_user(s, 331, pg_temp.search_age(s)) $$;

INSERT INTO scraping_sessions (id, source, status, started_at, finished_at, listings_found, error_message,
                               created_at)
SELECT k, pg_temp.pick('{autoscout24,mobile.de,kleinanzeigen,autotrader}', k, 301),
       CASE WHEN k = 4320 THEN 'running' WHEN pg_temp.session_failed(k) THEN 'failed' ELSE 'completed' END,
       pg_temp.session_start(k),
       CASE WHEN k = 4320 THEN NULL
            WHEN pg_temp.session_failed(k) THEN pg_temp.session_start(k) + (2 + 8 * pg_temp.r(k, 302)) * interval '1 minute'
            ELSE pg_temp.session_start(k) + (10 + 18 * pg_temp.r(k, 302)) * interval '1 minute' END,
       -- listings whose listing_session() is k
       (k::bigint * 1100000 + 4319) / 4320 - ((k::bigint - 1) * 1100000 + 4319) / 4320,
       CASE WHEN pg_temp.session_failed(k) THEN pg_temp.pick('{"HTTP 429 Too Many Requests",
         "Timeout after 300s waiting for selector .result-list","Proxy connection reset by peer",
         "Unexpected page layout: price element missing"}', k, 303) END,
       pg_temp.session_start(k)
FROM generate_series(1, 4320) AS k;

INSERT INTO vehicle_listings (id, scraping_session_id, make, model, year, price_eur, mileage_km, fuel, city,
                              is_active, created_at, updated_at)
SELECT i, pg_temp.listing_session(i), split_part(mm, '|', 1), split_part(mm, '|', 2), 2025 - age_y,
       greatest(900, round(split_part(mm, '|', 3)::int * power(0.87::float8, age_y) * (0.8 + 0.4 * pg_temp.r(i, 313))
                           / 10) * 10),
       greatest(10, round(age_y * 13000 * (0.4 + 1.2 * pg_temp.r(i, 314)) / 100) * 100 + pg_temp.ri(i, 315, 5, 95)),
       CASE WHEN mm LIKE '%|e' THEN 'electric'
            ELSE pg_temp.pick('{petrol,petrol,petrol,diesel,diesel,hybrid,electric,lpg}', i, 316) END,
       pg_temp.pick('{Berlin,Hamburg,Munich,Cologne,Frankfurt,Stuttgart,Duesseldorf,Leipzig,Dortmund,Essen,Bremen,
         Dresden,Hanover,Nuremberg,Duisburg,Bochum,Wuppertal,Bielefeld,Bonn,Muenster,Mannheim,Karlsruhe,Augsburg,
         Wiesbaden,Kiel,Aachen,Freiburg,Mainz,Rostock,Kassel}', i, 317),
       CASE WHEN created > pg_temp.ago(30) THEN pg_temp.r(i, 318) > 0.15 ELSE pg_temp.r(i, 318) > 0.92 END,
       created,
       CASE WHEN pg_temp.r(i, 319) < 0.35 THEN created + (pg_temp.session_start(4320) - created) * pg_temp.r(i, 320)
            ELSE created END
FROM generate_series(1, 1100000) AS i
CROSS JOIN LATERAL (SELECT (array['Volkswagen|Golf|29000', 'Volkswagen|Passat|36000', 'Volkswagen|Polo|21000',
  'Volkswagen|Tiguan|38000', 'Volkswagen|ID.3|39000|e', 'BMW|3 Series|45000', 'BMW|1 Series|33000', 'BMW|X3|52000',
  'Mercedes-Benz|C-Class|48000', 'Mercedes-Benz|A-Class|35000', 'Mercedes-Benz|E-Class|58000', 'Audi|A4|44000',
  'Audi|A3|34000', 'Audi|Q5|54000', 'Skoda|Octavia|28000', 'Skoda|Fabia|19000', 'Opel|Astra|24000',
  'Opel|Corsa|18000', 'Ford|Focus|25000', 'Ford|Fiesta|17000', 'Toyota|Corolla|27000', 'Toyota|Yaris|19000',
  'Renault|Clio|18000', 'Seat|Leon|26000', 'Hyundai|Tucson|33000', 'Hyundai|Ioniq 5|45000|e', 'Kia|Sportage|32000',
  'Tesla|Model 3|42000|e', 'Tesla|Model Y|48000|e', 'Peugeot|208|19000', 'Fiat|500|15000', 'Mazda|CX-5|33000',
  'Volvo|XC60|52000', 'Porsche|911|120000', 'Dacia|Sandero|13000', 'Mini|Cooper|27000'])
                             [1 + floor(36 * power(pg_temp.r(i, 311), 1.6))::int] AS mm,
                           floor(18 * power(pg_temp.r(i, 312), 1.5))::int AS age_y,
                           pg_temp.listing_created(i) AS created) AS x;

-- the scraper's log for sessions 1..4319 (the hung session's last lines come with the sequence fault)
INSERT INTO scraping_logs (id, session_id, log_level, message, created_at)
SELECT j, k, lvl,
       CASE lvl WHEN 'ERROR' THEN pg_temp.pick('{"HTTP 429 Too Many Requests from upstream",
                  "Timeout after 300s waiting for selector .result-list","Proxy connection reset by peer",
                  "Unexpected page layout: price element missing","Failed to upsert batch: deadlock detected"}', j, 343)
                WHEN 'WARN' THEN pg_temp.pick('{"Rate limited, backing off 30s","Listing without mileage skipped",
                  "Duplicate listing ignored","Slow response: 8.2s for search page"}', j, 344)
                ELSE 'Fetched page ' || pg_temp.ri(j, 345, 1, 40) || ' of search results: '
                     || pg_temp.ri(j, 346, 10, 60) || ' listings parsed, ' || pg_temp.ri(j, 347, 0, 20) || ' new' END,
       pg_temp.session_start(k) + pg_temp.r(j, 348) * interval '25 minutes'
FROM generate_series(1, 29960) AS j
CROSS JOIN LATERAL (SELECT 1 + (j - 1) * 4319 / 29960 AS k) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN pg_temp.session_failed(k) AND pg_temp.r(j, 341) < 0.4 THEN 'ERROR'
                                WHEN pg_temp.r(j, 341) < 0.02 THEN 'ERROR'
                                WHEN pg_temp.r(j, 342) < 0.10 THEN 'WARN' ELSE 'INFO' END AS lvl) AS y;

INSERT INTO saved_searches (id, user_id, name, criteria, push_enabled, created_at, updated_at)
SELECT s, pg_temp.uid(pg_temp.search_user(s)), split_part(mm, '|', 1) || ' ' || split_part(mm, '|', 2) || ' under '
       || price || ' EUR',
       jsonb_build_object('make', split_part(mm, '|', 1), 'model', split_part(mm, '|', 2), 'max_price', price,
                          'max_mileage', pg_temp.ri(s, 334, 2, 20) * 10000,
                          'fuel', pg_temp.pick('{any,any,petrol,diesel,electric,hybrid}', s, 335)),
       pg_temp.r(s, 336) < 0.8, pg_temp.ago(pg_temp.search_age(s)),
       pg_temp.ago(pg_temp.search_age(s) * pg_temp.r(s, 337))
FROM generate_series(1, 5000) AS s
CROSS JOIN LATERAL (SELECT pg_temp.pick('{Volkswagen|Golf,Volkswagen|Passat,BMW|3 Series,Audi|A4,Skoda|Octavia,
  Tesla|Model 3,Toyota|Corolla,Mercedes-Benz|C-Class,Hyundai|Ioniq 5,Volkswagen|Tiguan}', s, 332) AS mm,
                           pg_temp.ri(s, 333, 8, 45) * 1000 AS price) AS x;

-- a push per matching listing, a few minutes after it was scraped (so none newer than the hung scraper)
INSERT INTO notifications (id, user_id, saved_search_id, vehicle_listing_id, kind, title, body, status, read_at,
                           created_at, updated_at)
SELECT n, pg_temp.uid(pg_temp.search_user(s)), s, v.id, kind,
       CASE kind WHEN 'price_drop' THEN 'Price drop: ' ELSE 'New match: ' END || v.make || ' ' || v.model,
       v.make || ' ' || v.model || ', ' || v.year || ', ' || to_char(v.mileage_km, 'FM999G999') || ' km, '
       || to_char(v.price_eur, 'FM999G999') || ' EUR in ' || v.city,
       pg_temp.pick('{sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,sent,
         failed,queued}', n, 352),
       CASE WHEN pg_temp.r(n, 353) < 0.55 THEN sent_at + pg_temp.r(n, 354) * (pg_temp.t0() - sent_at) * 0.2 END,
       sent_at, sent_at
FROM generate_series(1, 100000) AS n
CROSS JOIN LATERAL (SELECT pg_temp.ri(n, 350, 1, 5000) AS s,
                           pg_temp.pick('{new_match,new_match,new_match,price_drop}', n, 351) AS kind) AS x
JOIN vehicle_listings AS v
  ON v.id = pg_temp.ri(n, 355, greatest(1, floor(1100000 * (1 - pg_temp.search_age(s) / 90.0)))::bigint, 1100000)
CROSS JOIN LATERAL (SELECT v.created_at + (2 + 28 * pg_temp.r(n, 356)) * interval '1 minute' AS sent_at) AS y;
