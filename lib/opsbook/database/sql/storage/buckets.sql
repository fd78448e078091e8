-- Supabase Storage: objects and bytes per bucket (sizes from metadata->>'size'); Supabase storage schema.
SELECT b.id AS bucket_id,
       b.public,
       count(o.id)::float8 AS objects,
       coalesce(sum((o.metadata ->> 'size')::bigint), 0)::float8 AS size_bytes
FROM storage.buckets b
LEFT JOIN storage.objects o ON o.bucket_id = b.id
GROUP BY b.id, b.public
ORDER BY size_bytes DESC, bucket_id
