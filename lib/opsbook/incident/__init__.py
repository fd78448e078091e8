"""Incidents: triage and remediation now, activity samples while it lasts, the post-mortem after."""
