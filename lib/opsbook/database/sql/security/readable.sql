-- Whether each relation named in :relations ('schema.name') exists and this role may read it, asked of the
-- catalogue alone: no name is looked up (to_regclass or a cast would raise "permission denied for schema" and write
-- an ERROR into the server's log), and the functions a view calls count (pg_hba_file_rules needs EXECUTE too): read
-- from the view's rule tree, since pg_depend records no dependency on a built-in function (pg_read_all_data, 14+,
-- gives SELECT on pg_hba_file_rules but not EXECUTE on the function behind it); PostgreSQL 13+.
SELECT r.name AS relation, current_user::text AS role_name,
       c.oid IS NOT NULL AS present,
       coalesce(has_schema_privilege(n.oid, 'USAGE'), false) AS schema_usage,
       coalesce(has_table_privilege(c.oid, 'SELECT'), false) AS can_select,
       coalesce((SELECT bool_and(has_function_privilege(f.called[1]::oid, 'EXECUTE'))
                   FROM pg_rewrite w, regexp_matches(w.ev_action::text, '[^a-z]funcid (\d+)', 'g') AS f(called)
                  WHERE w.ev_class = c.oid), true) AS can_execute
FROM unnest(CAST(:relations AS text[])) WITH ORDINALITY AS r(name, ord)
LEFT JOIN pg_namespace n ON n.nspname = split_part(r.name, '.', 1)
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = split_part(r.name, '.', 2)
                    AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY r.ord
