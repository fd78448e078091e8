-- Public Storage buckets, with up to 1,000 of their objects counted as the monitoring role sees them; Supabase
-- Storage schema, PostgreSQL 13+.
SELECT b.id::text AS bucket_id, b.name::text AS bucket_name,
       (SELECT count(*) FROM (SELECT 1 FROM storage.objects o WHERE o.bucket_id = b.id LIMIT 1000) x)::int
         AS objects_seen
FROM storage.buckets b
WHERE b.public
ORDER BY bucket_id
