"""Views of the tenants app: organisations and the hand-off, their settings, and the team."""
