"""The database side: the read-only session, the embedded server, the scratch sandbox, the SQL texts."""
