"""The `opsbook` command line and its commands."""
