"""Query tuning: the costliest statements, their plans, and indexes proven on a shadow cluster, never on the target."""
