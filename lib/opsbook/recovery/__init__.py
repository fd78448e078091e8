"""Backups and recovery: verify a dump by restoring it into a scratch database, get deleted rows back."""
