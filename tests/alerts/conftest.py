"""Alert fixtures: organisations on the seeded plans, members, alerts made by the service, a clean Redis."""

from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.conf import settings

from accounts.models import User
from alerts.conf import alert_settings
from alerts.models import Alert, AlertChannel, AlertCondition
from alerts.services import AlertSpec, alert_create
from tenants.models import Membership, Organisation, Role
from tests.streaming.conftest import committed  # noqa: F401 (a fixture of the live tests)
from tests.watchlists.conftest import inside

if TYPE_CHECKING:
    from tests.alerts.live import Running


def spec(**fields: Any) -> AlertSpec:
    values: dict[str, Any] = {
        "name": "Apple breakout",
        "symbol": "AAPL",
        "condition": AlertCondition.PRICE_ABOVE,
        "level": Decimal("105"),
        "cooldown_seconds": 3600,
        "channels": (AlertChannel.IN_APP,),
    }
    return AlertSpec(**{**values, **fields})


def make_alert(organisation: Organisation, created_by_id: int | None = None, **fields: Any) -> Alert:
    """An alert made through the service, in the organisation's schema (commits at once outside a test transaction)."""
    with inside(organisation):
        return alert_create(organisation=organisation, spec=spec(**fields), created_by_id=created_by_id)


@pytest.fixture
def acme(make_organisation: Any) -> Organisation:
    """On the Free plan: 3 alerts, 15-minute delayed data."""
    return make_organisation("acme", plan="free", name="Acme Capital")


@pytest.fixture
def globex(make_organisation: Any) -> Organisation:
    """On the Pro plan: 50 alerts, realtime."""
    return make_organisation("globex", plan="pro", name="Globex Markets")


@pytest.fixture
def add_member(make_user: Any) -> Callable[..., User]:
    def add(organisation: Organisation, email: str, role: Role = Role.MEMBER) -> User:
        user: User = make_user(email)
        Membership.objects.create(user=user, organisation=organisation, role=role)
        return user

    return add


@pytest.fixture
def clean_alert_state() -> Iterator[None]:
    """No last prices or change marks left in Redis by an earlier test (an engine would start from them)."""

    def wipe() -> None:
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(match=f"{alert_settings.redis_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()

    wipe()
    yield
    wipe()


@pytest.fixture
async def running() -> AsyncIterator["Running"]:
    """Feeds with their alert engines, in this test's loop (tests/alerts/live.py); all stopped afterwards."""
    from tests.alerts.live import Running  # the engine's tests only: the pages' tests need no feed

    feeds = Running()
    yield feeds
    await feeds.stop()
