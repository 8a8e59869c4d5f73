"""How a viewer's lease id names its widget: `w<widget id>:<process>:<number>`."""


def viewer_lease_prefix(widget_id: int) -> str:
    """Viewer leases start with their widget's id, so the widget page can count viewers per widget."""
    return f"w{widget_id}:"


def lease_widget_id(lease_id: str) -> int | None:
    prefix = lease_id.split(":", 1)[0]
    return int(prefix[1:]) if prefix[:1] == "w" and prefix[1:].isdecimal() and prefix[1:].isascii() else None
