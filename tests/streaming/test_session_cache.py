"""The web process reuses a connect check of the same session in the same organisation for
STREAM_SESSION_CACHE_SECONDS (2 s by default): no database call for a burst of connects, and every
change that must shut a member out (sign-out, password change, deactivation, removal, unpaid
subscription, plan change) still reaches new connects within that time.

Through the whole ASGI application. The window is shortened to 0.5 s here to keep the tests quick; the
promise is the same at any length.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.test import override_settings

from accounts.models import User
from streaming import access, consumers
from tenants.models import Organisation, SubscriptionStatus
from tests.streaming.conftest import Committed, Tenant, connect, expect_refusal, receive, remove_members_but_the_owner

pytestmark = [pytest.mark.asyncio]

WINDOW = 0.5


@pytest.fixture(autouse=True)
def short_window() -> Iterator[None]:
    access._verified.clear()
    with override_settings(STREAM_SESSION_CACHE_SECONDS=WINDOW):
        yield
    access._verified.clear()


async def streams(tenant: Tenant, session: str | None = None, query: str = "symbols=AAPL") -> None:
    ws = connect(tenant.host, session=session or tenant.session, query=query)
    await ws.connect()
    assert (await receive(ws))["type"] == "snapshot"
    await ws.disconnect()


async def test_connects_within_the_window_skip_the_database_and_symbols_are_still_checked(
    committed: Committed, hub_cleanup: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str | None] = []

    def counted(**kwargs: object) -> object:  # the real check, counted
        checks.append(str(kwargs["session_key"]))
        return access.stream_access(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(consumers, "stream_access", counted)
    tenant = await committed.tenant("pro")
    await streams(tenant)  # checked in the database, remembered
    await streams(tenant)
    await streams(tenant, query="symbols=MSFT,AAPL")
    assert checks == [tenant.session]
    await asyncio.sleep(WINDOW)
    await streams(tenant)  # the window is over: checked again
    assert checks == [tenant.session, tenant.session]
    # The symbols are the connect's own: checked against the directory and the plan every time.
    ws = connect(tenant.host, session=tenant.session, query="symbols=" + ",".join(f"S{i}" for i in range(9)))
    await expect_refusal(ws, 4400, "bad_request")


async def test_another_organisation_is_never_answered_from_the_cache(committed: Committed, hub_cleanup: None) -> None:
    alpha, beta = await committed.tenant("pro"), await committed.tenant("pro")
    await streams(alpha)
    intruder = connect(beta.host, session=alpha.session, query="symbols=AAPL")
    await expect_refusal(intruder, 4403, "forbidden")


async def _sign_out(tenant: Tenant) -> None:
    await Session.objects.filter(pk=tenant.session).adelete()


async def _new_password(tenant: Tenant) -> None:
    await User.objects.filter(pk=tenant.owner.pk).aupdate(password=make_password("a-new-password-2026"))


async def _deactivated(tenant: Tenant) -> None:
    await User.objects.filter(pk=tenant.owner.pk).aupdate(is_active=False)


async def _unpaid(tenant: Tenant) -> None:
    await Organisation.objects.filter(pk=tenant.organisation.pk).aupdate(
        subscription_status=SubscriptionStatus.CANCELED
    )


@pytest.mark.parametrize(
    ("change", "close_code", "error_code"),
    [(_sign_out, 4401, "not_authenticated"), (_new_password, 4401, "not_authenticated"),
     (_deactivated, 4401, "not_authenticated"), (_unpaid, 4402, "payment_required")],
    ids=["sign-out", "password-change", "deactivation", "unpaid"],
)  # fmt: skip
async def test_a_change_that_shuts_the_member_out_reaches_new_connects_within_the_window(
    committed: Committed,
    hub_cleanup: None,
    change: Callable[[Tenant], Awaitable[None]],
    close_code: int,
    error_code: str,
) -> None:
    tenant = await committed.tenant("pro")
    await streams(tenant)
    await change(tenant)
    await asyncio.sleep(WINDOW)
    await expect_refusal(connect(tenant.host, session=tenant.session, query="symbols=AAPL"), close_code, error_code)


async def test_a_removed_member_is_refused_within_the_window(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    member = await committed.member(tenant, f"member@{tenant.organisation.slug}.example")
    await streams(tenant, session=member)
    await sync_to_async(remove_members_but_the_owner)(tenant)
    await asyncio.sleep(WINDOW)
    await expect_refusal(connect(tenant.host, session=member, query="symbols=AAPL"), 4403, "forbidden")


async def test_a_refusal_is_never_remembered(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    await _deactivated(tenant)
    await expect_refusal(connect(tenant.host, session=tenant.session, query="symbols=AAPL"), 4401, "not_authenticated")
    await User.objects.filter(pk=tenant.owner.pk).aupdate(is_active=True)
    await streams(tenant)  # at once: the refusal above left nothing behind


async def test_zero_turns_it_off(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    with override_settings(STREAM_SESSION_CACHE_SECONDS=0):
        await streams(tenant)
        await _sign_out(tenant)
        await expect_refusal(connect(tenant.host, session=tenant.session), 4401, "not_authenticated")
    assert not access._verified
