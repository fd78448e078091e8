-- 002 AIN MVP: 6,000 valuations over 180 days (a PDF for each completed one) and 4,000 public share tokens
-- that expire after 30 days.

INSERT INTO valuations (id, user_id, vehicle_listing_id, make, model, year, estimated_value_eur, confidence, pdf_path,
                        status, created_at, updated_at)
SELECT pg_temp.valuation_id(v), pg_temp.uid(pg_temp.valuation_user(v)), l.id,
       coalesce(l.make, pg_temp.pick('{Volkswagen,BMW,Audi,Skoda,Toyota,Ford,Opel}', v, 401)),
       coalesce(l.model, pg_temp.pick('{Golf,"3 Series",A4,Octavia,Corolla,Focus,Astra}', v, 402)),
       coalesce(l.year, pg_temp.ri(v, 403, 2010, 2025)::smallint),
       round(coalesce(l.price_eur, pg_temp.ri(v, 404, 4000, 60000)) * (0.9 + 0.2 * pg_temp.r(v, 405)) / 50) * 50,
       round((0.6 + 0.38 * pg_temp.r(v, 406))::numeric, 3),
       CASE WHEN pg_temp.valuation_status(v) = 'completed'
            THEN pg_temp.uid(pg_temp.valuation_user(v)) || '/' || pg_temp.valuation_id(v) || '.pdf' END,
       pg_temp.valuation_status(v), pg_temp.ago(pg_temp.valuation_age(v)),
       pg_temp.ago(pg_temp.valuation_age(v)) + interval '40 seconds'
FROM generate_series(1, 6000) AS v
LEFT JOIN vehicle_listings AS l ON pg_temp.r(v, 407) < 0.7 AND l.id = pg_temp.ri(v, 408, 1, 1100000);

INSERT INTO public_share_tokens (id, valuation_id, token, expires_at, view_count, created_at)
SELECT t, pg_temp.valuation_id(v), md5('share-token-' || t) || substr(md5('share-salt-' || t), 1, 16),
       created + interval '30 days', floor(40 * power(pg_temp.r(t, 411), 3))::int, created
FROM generate_series(1, 4000) AS t
CROSS JOIN LATERAL (SELECT pg_temp.ri(t, 410, 1, 5990) AS v) AS x
CROSS JOIN LATERAL (SELECT pg_temp.ago(pg_temp.valuation_age(v) * pg_temp.r(t, 412)) AS created) AS y;
