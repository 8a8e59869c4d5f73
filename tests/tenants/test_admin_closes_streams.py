"""Staff removing a member or deleting an organisation in the admin closes the affected open streams."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from accounts.models import User
from tenants.models import Membership
from tests.streaming.conftest import Committed, committed, connect, hub_cleanup, receive, receive_until


def staff_client(committed: Committed) -> Client:
    staff = User.objects.create_superuser(
        email=f"staff{User.objects.count()}@tickerdeck.test", password="x-Pass-123456"
    )
    committed.users.append(staff)
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    return client


async def streaming(host: str, session: str) -> Any:
    ws = connect(host, session=session, query="symbols=AAPL")
    await ws.connect()
    assert (await receive(ws))["type"] == "snapshot"
    return ws


async def test_deleting_a_membership_in_the_admin_closes_that_members_streams(
    committed: Committed, hub_cleanup: None
) -> None:
    tenant = await committed.tenant("pro")
    member_session = await committed.member(tenant, f"member@{tenant.organisation.slug}.example")
    member_ws = await streaming(tenant.host, member_session)
    owner_ws = await streaming(tenant.host, tenant.session)

    def delete_in_admin() -> int:
        client = staff_client(committed)
        membership = Membership.objects.get(organisation=tenant.organisation, user__email__startswith="member@")
        return client.post(f"/admin/tenants/membership/{membership.pk}/delete/", {"post": "yes"}).status_code

    assert await sync_to_async(delete_in_admin)() == 302
    assert (await receive_until(member_ws, "error", within=2))["code"] == "forbidden"
    assert await member_ws.receive_output(2) == {"type": "websocket.close", "code": 4403}
    await owner_ws.send_to(text_data='{"action":"ping"}')
    assert (await receive_until(owner_ws, "pong"))["type"] == "pong"
    await owner_ws.disconnect()


async def test_deleting_an_organisation_in_the_admin_closes_its_streams(
    committed: Committed, hub_cleanup: None
) -> None:
    tenant = await committed.tenant("pro")
    ws = await streaming(tenant.host, tenant.session)

    def delete_in_admin() -> int:
        client = staff_client(committed)
        response = client.post(f"/admin/tenants/organisation/{tenant.organisation.pk}/delete/", {"post": "yes"})
        committed.organisations.remove(tenant.organisation)
        return response.status_code

    assert await sync_to_async(delete_in_admin)() == 302
    assert (await receive_until(ws, "error", within=2))["code"] == "unknown_tenant"
    assert await ws.receive_output(2) == {"type": "websocket.close", "code": 4404}


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    settings.ACCOUNT_RATE_LIMITS = False


__all__ = ["committed", "hub_cleanup"]  # fixtures from tests/streaming/conftest.py
