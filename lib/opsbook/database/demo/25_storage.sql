-- storage: six buckets and about 30,000 objects whose names, owners and dates match the rows that refer to them
-- (listing photos, valuation PDFs, chat attachments, avatars, ticket screenshots, automation results).

CREATE FUNCTION pg_temp.size_bytes(i bigint, salt bigint, lo float8, hi float8) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT round(exp(ln(lo) + pg_temp.r(i, salt) * (ln(hi) - ln(lo))))::bigint $$;

INSERT INTO storage.buckets (id, name, public, file_size_limit, allowed_mime_types, created_at, updated_at)
VALUES ('vehicle-photos', 'vehicle-photos', true, 10485760, '{image/jpeg,image/webp}', pg_temp.ago(700), pg_temp.ago(700)),
       ('valuation-pdfs', 'valuation-pdfs', false, 20971520, '{application/pdf}', pg_temp.ago(400), pg_temp.ago(400)),
       ('chat-attachments', 'chat-attachments', false, 52428800, NULL, pg_temp.ago(300), pg_temp.ago(300)),
       ('avatars', 'avatars', true, 5242880, '{image/*}', pg_temp.ago(730), pg_temp.ago(730)),
       ('ticket-attachments', 'ticket-attachments', false, 10485760, NULL, pg_temp.ago(250), pg_temp.ago(250)),
       ('automation-results', 'automation-results', false, NULL, '{application/json}', pg_temp.ago(200), pg_temp.ago(200));

INSERT INTO storage.objects (id, bucket_id, name, owner, created_at, updated_at, last_accessed_at, metadata, version)
SELECT md5('object-' || bucket || '/' || name)::uuid, bucket, name, owner, created, created,
       created + (pg_temp.t0() - created) * pg_temp.r(i, 501),
       jsonb_build_object('eTag', '"' || md5(bucket || name) || '"', 'size', size, 'mimetype', mime,
                          'cacheControl', 'max-age=3600', 'lastModified', created, 'contentLength', size,
                          'httpStatusCode', 200),
       md5('version-' || name)::uuid::text
FROM (
  SELECT p AS i, 'vehicle-photos' AS bucket, 'listings/' || l || '/' || p || '.jpg' AS name, NULL::uuid AS owner,
         pg_temp.listing_created(l) AS created, pg_temp.size_bytes(p, 510, 60e3, 900e3) AS size, 'image/jpeg' AS mime
  FROM generate_series(1, 16000) AS p, LATERAL (SELECT pg_temp.ri(p, 511, 1, 1100000) AS l) AS x
  UNION ALL
  SELECT v, 'valuation-pdfs', pg_temp.uid(pg_temp.valuation_user(v)) || '/' || pg_temp.valuation_id(v) || '.pdf',
         pg_temp.uid(pg_temp.valuation_user(v)), pg_temp.ago(pg_temp.valuation_age(v)) + interval '35 seconds',
         pg_temp.size_bytes(v, 520, 150e3, 2.5e6), 'application/pdf'
  FROM generate_series(1, 6000) AS v WHERE pg_temp.valuation_status(v) = 'completed'
  UNION ALL
  SELECT a, 'chat-attachments', pg_temp.conv_id(c) || '/' || md5('attachment-' || a)::uuid || '.' || ext,
         pg_temp.uid(pg_temp.conv_user(c)), pg_temp.ago(pg_temp.conv_age(c) * pg_temp.r(a, 532)),
         pg_temp.size_bytes(a, 533, 5e3, 8e6),
         CASE ext WHEN 'png' THEN 'image/png' WHEN 'jpg' THEN 'image/jpeg' WHEN 'pdf' THEN 'application/pdf'
                  WHEN 'txt' THEN 'text/plain'
                  ELSE 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' END
  FROM generate_series(1, 4000) AS a,
       LATERAL (SELECT pg_temp.ri(a, 530, 1, 8000) AS c, pg_temp.pick('{png,png,jpg,pdf,pdf,txt,docx}', a, 531) AS ext) AS x
  UNION ALL
  SELECT n, 'avatars', pg_temp.uid(n) || '.png', pg_temp.uid(n), pg_temp.ago(pg_temp.user_age(n)) + interval '2 minutes',
         pg_temp.size_bytes(n, 540, 20e3, 400e3), 'image/png'
  FROM generate_series(1, 10000) AS n WHERE pg_temp.r(n, 102) < 0.3
  UNION ALL
  SELECT s, 'ticket-attachments', t || '/screenshot-' || s || '.png', NULL, pg_temp.ago(pg_temp.ticket_age(t)),
         pg_temp.size_bytes(s, 551, 50e3, 3e6), 'image/png'
  FROM generate_series(1, 1500) AS s, LATERAL (SELECT pg_temp.ri(s, 550, 1, 3000) AS t) AS x
  UNION ALL
  SELECT j, 'automation-results', (1 + j % 200) || '/' || j || '.json', NULL, pg_temp.ago(90 * pg_temp.r(j, 560)),
         pg_temp.size_bytes(j, 561, 1e3, 500e3), 'application/json'
  FROM generate_series(1, 500) AS j
) AS o;
