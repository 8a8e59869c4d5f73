"""The plans of SPEC, seeded on first migrate; staff edit them in the admin afterwards."""

from decimal import Decimal
from typing import Any

from .models import LIMIT_FIELDS

_FIELDS = ("name", "slug", "price_monthly", *LIMIT_FIELDS, "is_public", "is_default")

SEED_PLANS: list[dict[str, Any]] = [
    dict(zip(_FIELDS, row, strict=True))
    for row in (
        ("Free", "free", Decimal("0"), 5, 2, 1, 0, 0, False, 15, True, True),
        ("Pro", "pro", Decimal("29"), 50, 10, 10, 3, 200, True, 0, True, False),
        ("Business", "business", Decimal("199"), 500, 100, 100, 25, 5000, True, 0, True, False),
    )
]
