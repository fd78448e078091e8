-- Session-local helpers (pg_temp: gone when the build's connection closes, never seen by a runbook).
-- Every generated value is a pure function of a row number and a salt (hashint8extended, stable across
-- versions and plans) and of the anchor time t0 (the build's now()): the same rows on every build, as recent
-- as the day it was built. Entities that other tables refer to (users, leads, listings, conversations) have
-- their attributes as functions here, so a referring row computes them instead of joining.

CREATE FUNCTION pg_temp.t0() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT __NOW__ $$;
-- uniform in [0, 1)
CREATE FUNCTION pg_temp.r(i bigint, salt bigint) RETURNS float8 LANGUAGE sql STABLE
  AS $$ SELECT (hashint8extended(i, salt) & 9007199254740991)::float8 / 9007199254740992.0 $$;
-- integer uniform in [lo, hi]
CREATE FUNCTION pg_temp.ri(i bigint, salt bigint, lo bigint, hi bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT lo + floor(pg_temp.r(i, salt) * (hi - lo + 1))::bigint $$;
CREATE FUNCTION pg_temp.pick(a text[], i bigint, salt bigint) RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT a[1 + floor(pg_temp.r(i, salt) * cardinality(a))::int] $$;
CREATE FUNCTION pg_temp.ago(days float8) RETURNS timestamptz LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.t0() - days * interval '1 day' $$;
-- a plausible time of day: days ago, moved into 06:00-22:00 of that day, never in the future
CREATE FUNCTION pg_temp.daytime(days float8, i bigint, salt bigint) RETURNS timestamptz LANGUAGE sql STABLE
  AS $$ SELECT least(date_trunc('day', pg_temp.ago(days)) + (6 + 16 * pg_temp.r(i, salt)) * interval '1 hour',
                     pg_temp.t0() - pg_temp.r(i, salt + 1) * interval '1 hour') $$;

-- users 1..10000: user n signed up user_age(n) days ago (growth: more recent sign-ups), every third is active
CREATE FUNCTION pg_temp.uid(n bigint) RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT md5('user-' || n)::uuid $$;
CREATE FUNCTION pg_temp.user_age(n bigint) RETURNS float8 LANGUAGE sql STABLE
  AS $$ SELECT 730 * power(1 - (n - 0.5) / 10000.0, 1.8) $$;
CREATE FUNCTION pg_temp.users_at(days float8) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT greatest(3, floor(10000 * (1 - power(least(days, 730) / 730.0, 1 / 1.8))))::bigint $$;
CREATE FUNCTION pg_temp.active_user(i bigint, salt bigint, days float8) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT 3 * pg_temp.ri(i, salt, 1, pg_temp.users_at(days) / 3) $$;
CREATE FUNCTION pg_temp.email(n bigint) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT lower(pg_temp.pick('{anna,ben,clara,david,emma,felix,greta,hugo,ines,jonas,karla,leon,mia,noah,olga,paul,
    quinn,rosa,sven,tara,umar,vera,wim,xenia,yusuf,zoe,lukas,marie,tim,lea}', n, 1)
    || '.' || pg_temp.pick('{schmidt,mueller,meyer,wagner,becker,hoffmann,koch,richter,klein,wolf,neumann,braun,
    zimmermann,krueger,hartmann,lange,werner,krause,lehmann,maier,dubois,rossi,novak,silva,jensen}', n, 2)
    || n || '@' || pg_temp.pick('{gmail.com,web.de,gmx.de,outlook.com,icloud.com,proton.me,yahoo.com}', n, 3))
$$;
CREATE FUNCTION pg_temp.full_name(n bigint) RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT initcap(replace(split_part(pg_temp.email(n), '@', 1), '.', ' ')) $$;

-- dealership staff: users 12j+1 (j = 0..832) work at dealership 1 + j % 120
CREATE FUNCTION pg_temp.staff(dealership bigint, i bigint, salt bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT 12 * ((dealership - 1) + 120 * pg_temp.ri(i, salt, 0, 5)) + 1 $$;
-- leads 1..20000: dealership (skewed to the big ones), age in days (a year, skewed recent), assigned staff
CREATE FUNCTION pg_temp.lead_dealership(l bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT 1 + floor(120 * power(pg_temp.r(l, 40), 1.7))::bigint $$;
CREATE FUNCTION pg_temp.lead_age(l bigint) RETURNS float8 LANGUAGE sql STABLE
  AS $$ SELECT 365 * power(pg_temp.r(l, 41), 1.5) $$;
CREATE FUNCTION pg_temp.lead_staff(l bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.staff(pg_temp.lead_dealership(l), l, 42) $$;

-- scraping sessions 1..4320: one every 30 minutes for 90 days; the scraper stopped 9 hours ago
CREATE FUNCTION pg_temp.session_start(k bigint) RETURNS timestamptz LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.t0() - interval '9 hours' - (4320 - k) * interval '30 minutes' $$;
-- vehicle listings 1..1100000, in scrape order
CREATE FUNCTION pg_temp.listing_session(i bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT 1 + (i - 1) * 4320 / 1100000 $$;
CREATE FUNCTION pg_temp.listing_created(i bigint) RETURNS timestamptz LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.session_start(pg_temp.listing_session(i)) + pg_temp.r(i, 50) * interval '25 minutes' $$;

-- conversations 1..8000 of active users over 120 days
CREATE FUNCTION pg_temp.conv_id(c bigint) RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT md5('conversation-' || c)::uuid $$;
CREATE FUNCTION pg_temp.conv_age(c bigint) RETURNS float8 LANGUAGE sql STABLE
  AS $$ SELECT 120 * power(pg_temp.r(c, 60), 1.3) $$;
CREATE FUNCTION pg_temp.conv_user(c bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.active_user(c, 61, pg_temp.conv_age(c)) $$;

-- valuations 1..6000 over 180 days
CREATE FUNCTION pg_temp.valuation_id(v bigint) RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT md5('valuation-' || v)::uuid $$;
CREATE FUNCTION pg_temp.valuation_age(v bigint) RETURNS float8 LANGUAGE sql STABLE
  AS $$ SELECT 180 * power(pg_temp.r(v, 70), 1.2) $$;
CREATE FUNCTION pg_temp.valuation_user(v bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.active_user(v, 71, pg_temp.valuation_age(v)) $$;
CREATE FUNCTION pg_temp.valuation_status(v bigint) RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT CASE WHEN v > 5990 THEN 'pending' WHEN pg_temp.r(v, 72) < 0.04 THEN 'failed' ELSE 'completed' END $$;

-- support tickets 1..3000 over 180 days
CREATE FUNCTION pg_temp.ticket_age(t bigint) RETURNS float8 LANGUAGE sql STABLE
  AS $$ SELECT 180 * power(pg_temp.r(t, 80), 1.4) $$;

-- A pool of 1000 texts of about 3,000 characters: realistic message, note and ticket bodies are prefixes.
CREATE TEMP TABLE para (k integer PRIMARY KEY, txt text NOT NULL);
INSERT INTO para
SELECT k, string_agg(pg_temp.pick('{the,a,customer,vehicle,price,offer,please,thanks,we,can,could,would,you,your,
  our,dealer,car,test,drive,financing,lease,monthly,rate,trade-in,valuation,report,mileage,service,history,
  warranty,delivery,next,week,tomorrow,call,email,appointment,available,still,interested,question,about,the,
  model,engine,diesel,petrol,electric,hybrid,battery,range,charging,insurance,registration,paperwork,deposit,
  discount,final,confirmed,scheduled,pending,issue,error,login,password,reset,account,upload,photo,document,
  invoice,payment,failed,retry,sync,export,dashboard,workflow,automation,job,ticket,support,priority,urgent,
  summary,analysis,recommendation,is,are,was,has,have,been,with,for,and,or,but,not,to,of,in,on,at,by,from,
  this,that,it,they,them,if,when,after,before,because,so,also,only,just,very,more,less,new,used,good,great,
  best,fast,slow,today,morning,afternoon,evening,Monday,Friday,Berlin,Munich,Hamburg,Golf,Passat,Model,Tesla,
  BMW,Audi,Skoda,Octavia,Corolla,Yaris,Clio,Astra}', k * 1000 + w, 90), ' ' ORDER BY w)
FROM generate_series(1, 1000) AS k, generate_series(1, 480) AS w
GROUP BY k;
