-- Supabase Storage: objects and their bytes (metadata->>'size') per bucket, largest first; needs the storage schema.
SELECT bucket_id,
       count(*)::bigint AS objects,
       coalesce(sum(CASE WHEN (metadata ->> 'size') ~ '^[0-9]+$' THEN (metadata ->> 'size')::bigint END), 0)::bigint
         AS size_bytes,
       max(created_at) AS newest_at
FROM storage.objects
GROUP BY bucket_id
ORDER BY size_bytes DESC, bucket_id
