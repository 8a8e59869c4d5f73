"""The feed leader ends payment grace periods by itself: nobody has to schedule a command."""

import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from streaming import feed as feed_module
from streaming.feed import Feed
from tenants.models import Organisation, SubscriptionStatus
from tests.streaming.conftest import Committed, committed, connect, feed, hub_cleanup, receive, receive_until

__all__ = ["committed", "feed", "hub_cleanup"]  # fixtures from tests/streaming/conftest.py


@pytest.fixture
def quick_grace_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "GRACE_CHECK_SECONDS", 0.2)


async def test_the_leader_closes_past_due_streams_once_their_grace_ends(
    committed: Committed, quick_grace_checks: None, feed: Feed
) -> None:
    tenant = await committed.tenant(
        "pro",
        subscription_status=SubscriptionStatus.PAST_DUE,
        payment_grace_until=timezone.now() + dt.timedelta(days=3),
    )
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    assert (await receive(ws))["type"] == "snapshot"

    def grace_ends() -> None:
        Organisation.objects.filter(pk=tenant.organisation.pk).update(payment_grace_until=timezone.now())

    await sync_to_async(grace_ends)()
    error = await receive_until(ws, "error", within=3)
    assert error["code"] == "payment_required"
    assert await ws.receive_output(2) == {"type": "websocket.close", "code": 4402}
