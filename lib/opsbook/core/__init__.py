"""The shared core: findings and their severity, errors, redaction of secrets, and how results are shown."""
