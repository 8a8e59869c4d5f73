"""The plans of SPEC, seeded on first migrate; staff edit them in the admin afterwards."""

from decimal import Decimal
from typing import Any

from .models import LIMIT_FIELDS

_FIELDS = ("name", "slug", "price_monthly", *LIMIT_FIELDS, "is_public", "is_default")

# SPEC "Plans": name, slug, price, symbols/stream, streams, watchlists, widgets, widget viewers, alerts,
# realtime, delay, public, default.
PLANS: list[dict[str, Any]] = [
    dict(zip(_FIELDS, row, strict=True))
    for row in (
        ("Free", "free", Decimal("0"), 5, 2, 1, 0, 0, 3, False, 15, True, True),
        ("Pro", "pro", Decimal("29"), 50, 10, 10, 3, 200, 50, True, 0, True, False),
        ("Business", "business", Decimal("199"), 500, 100, 100, 25, 5000, 1000, True, 0, True, False),
    )
]

# Columns that came with later migrations, which set them on the seeded plans themselves (migration
# 0002 runs with the plan table as 0001 made it, so it cannot be given them).
LATER_FIELDS = ("max_alerts",)

# What migration 0002 seeds.
SEED_PLANS: list[dict[str, Any]] = [{k: v for k, v in plan.items() if k not in LATER_FIELDS} for plan in PLANS]

# max_alerts per seeded plan, set by migration 0005 (free 3, pro 50, business 1000).
SEED_MAX_ALERTS: dict[str, int] = {plan["slug"]: plan["max_alerts"] for plan in PLANS}
