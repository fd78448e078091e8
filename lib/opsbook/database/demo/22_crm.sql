-- 001 AutoRepAi: 120 dealerships, a profile per user (staff: users 12j+1), 20,000 leads over a year,
-- 50,000 interactions, 8,000 quotes (with duplicated quote numbers: the invalid unique index in PROBLEMS).

INSERT INTO dealerships (id, name, slug, tier, city, created_at, updated_at)
SELECT d, c || ' ' || b || ' ' || pg_temp.pick('{Motors,Autohaus,Cars,Mobility,Automobile}', d, 201),
       lower(c || '-' || b || '-' || d), pg_temp.pick('{free,pro,pro,team}', d, 202), c,
       pg_temp.ago(400 + 300 * pg_temp.r(d, 203)), pg_temp.ago(60 * pg_temp.r(d, 204))
FROM generate_series(1, 120) AS d,
     LATERAL (SELECT pg_temp.pick('{Berlin,Hamburg,Munich,Cologne,Frankfurt,Stuttgart,Leipzig,Dresden,Hanover,
       Nuremberg,Bremen,Essen,Vienna,Zurich,Graz}', d, 205) AS c,
       pg_temp.pick('{VW,BMW,Audi,Toyota,Skoda,Ford,Renault,Hyundai,Kia,Mercedes,Opel,Tesla}', d, 206) AS b) AS x;

INSERT INTO profiles (id, dealership_id, full_name, avatar_url, role, active, created_at, updated_at)
SELECT pg_temp.uid(n),
       CASE WHEN n % 12 = 1 THEN 1 + ((n - 1) / 12) % 120 END,
       pg_temp.full_name(n),
       CASE WHEN pg_temp.r(n, 102) < 0.3 THEN 'avatars/' || pg_temp.uid(n) || '.png' END,
       CASE WHEN n % 12 = 1 THEN (CASE WHEN (n - 1) / 12 < 120 THEN 'org_admin' ELSE 'sales' END) ELSE 'member' END,
       pg_temp.r(n, 210) > 0.03,
       pg_temp.ago(pg_temp.user_age(n)), pg_temp.ago(pg_temp.user_age(n) * pg_temp.r(n, 211))
FROM generate_series(1, 10000) AS n;

INSERT INTO leads (id, dealership_id, assigned_to, full_name, email, phone, source, status, vehicle_interest, notes,
                   created_at, updated_at)
SELECT l, pg_temp.lead_dealership(l), pg_temp.uid(pg_temp.lead_staff(l)), nm,
       -- 150 leads left over from testing (the guide's "clear test data" procedure)
       CASE WHEN l % 133 = 0 THEN 'qa' || l || '@test.com'
            ELSE lower(replace(nm, ' ', '.')) || '@' || pg_temp.pick('{gmail.com,web.de,gmx.de,outlook.com}', l, 220) END,
       '+49 1' || pg_temp.ri(l, 221, 50, 79) || ' ' || pg_temp.ri(l, 222, 1000000, 9999999),
       pg_temp.pick('{website,website,website,phone,walk-in,autoscout24,autoscout24,facebook,referral}', l, 223),
       CASE WHEN age < 14 THEN pg_temp.pick('{new,new,new,contacted,contacted,qualified}', l, 224)
            ELSE pg_temp.pick('{contacted,qualified,negotiation,won,lost,lost,lost}', l, 225) END,
       pg_temp.pick('{"VW Golf","VW Passat","Skoda Octavia","BMW 3 Series","Audi A4","Toyota Corolla","Tesla Model 3",
         "Hyundai Ioniq 5","Kia Sportage","Ford Focus","Opel Astra","Renault Clio"}', l, 226),
       CASE WHEN pg_temp.r(l, 227) < 0.6 THEN left(p.txt, pg_temp.ri(l, 228, 40, 400)::int) END,
       pg_temp.ago(age), pg_temp.ago(age * pg_temp.r(l, 229))
FROM generate_series(1, 20000) AS l
CROSS JOIN LATERAL (SELECT pg_temp.lead_age(l) AS age,
                           initcap(pg_temp.pick('{lena,max,sofia,elias,hannah,finn,lina,paul,ella,luis,amelie,
                             jakob,nora,moritz,ida,anton,frieda,karl}', l, 230)) || ' ' ||
                           initcap(pg_temp.pick('{schulz,fischer,weber,schneider,bauer,vogel,frank,berger,
                             jung,hahn,roth,beck,lorenz,baumann,franke,albrecht}', l, 231)) AS nm) AS x
JOIN para AS p ON p.k = pg_temp.ri(l, 232, 1, 1000);

-- interactions of a lead happen between its creation and now, by its assigned salesperson or the AI assistant
INSERT INTO interactions (id, lead_id, user_id, channel, direction, body, ai_generated, created_at)
SELECT i, lid, CASE WHEN ai THEN NULL ELSE pg_temp.uid(pg_temp.lead_staff(lid)) END,
       pg_temp.pick('{email,email,phone,sms,chat,chat,note}', i, 241),
       pg_temp.pick('{inbound,outbound,outbound}', i, 242),
       left(p.txt, pg_temp.ri(i, 243, 60, 900)::int), ai,
       pg_temp.ago(pg_temp.lead_age(lid) * power(pg_temp.r(i, 244), 0.5))
FROM generate_series(1, 50000) AS i
CROSS JOIN LATERAL (SELECT pg_temp.ri(i, 240, 1, 20000) AS lid, pg_temp.r(i, 245) < 0.3 AS ai) AS x
JOIN para AS p ON p.k = pg_temp.ri(i, 246, 1, 1000);

-- quote numbers come from a counter that raced: 40 numbers were handed out twice
INSERT INTO quotes (id, lead_id, dealership_id, quote_number, amount_eur, status, valid_until, created_at,
                    updated_at)
SELECT q, lid, pg_temp.lead_dealership(lid),
       'Q-' || lpad((CASE WHEN q % 200 = 0 THEN q - 1 ELSE q END)::text, 6, '0'),
       round((8000 + 52000 * power(pg_temp.r(q, 251), 1.6))::numeric, 2),
       pg_temp.pick('{draft,sent,sent,accepted,declined,expired}', q, 252),
       (pg_temp.ago(age) + interval '14 days')::date, pg_temp.ago(age), pg_temp.ago(age * pg_temp.r(q, 253))
FROM generate_series(1, 8000) AS q
CROSS JOIN LATERAL (SELECT pg_temp.ri(q, 250, 1, 20000) AS lid) AS x
CROSS JOIN LATERAL (SELECT pg_temp.lead_age(lid) * pg_temp.r(q, 254) AS age) AS y;
