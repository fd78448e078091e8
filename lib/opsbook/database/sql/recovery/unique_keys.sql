-- Unique, non-partial indexes on plain columns of one table: the keys a user may name when it has no primary
-- key; PG 13+ (indnkeyatts: 11+).
SELECT ic.relname AS index,
       string_agg(a.attname, ',' ORDER BY k.ord) AS columns,
       bool_and(a.attnotnull) AS all_not_null
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass(:table) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
  AND k.ord <= i.indnkeyatts
GROUP BY ic.relname
ORDER BY ic.relname
