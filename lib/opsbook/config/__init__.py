"""The configuration: opsbook.toml, its schema and bounds, runbook parameters, where files live, and the
Supabase price list and plan limits it can override."""
