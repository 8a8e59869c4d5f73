"""Writes of the tenants app: organisations, the log-in hand-off, and the team."""
