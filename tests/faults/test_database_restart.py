"""PostgreSQL restarted under a running web process (a proxy in front of the shared server, cut and
restored): `/readyz` fails and pages say "temporarily unavailable", open streams go on, and then
everything works again without a restart of ours; a Stripe webhook delivered meanwhile is answered
503, so Stripe retries it, and the retry applies once."""

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async

from billing.models import BillingHistory, StripeEvent
from tenants.models import Organisation
from tests.billing.conftest import SECRET_KEY, WEBHOOK_SECRET
from tests.billing.stripe_events import signed, subscription_event
from tests.faults.conftest import TcpProxy, proxied_database_url
from tests.live import FeedProcess, LiveServer, free_port, record_figure, stream_environment, uvicorn_server
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import Tally, now_ms, read_for, recv_json, ws_connect

pytestmark = pytest.mark.live

feed = live_support.feed

PAGES_AFTER_RECOVERY = 30  # more than the pool holds (DATABASE_POOL_MAX 12): every broken connection is met


@pytest.fixture
def proxied_web(db: None, committed: Committed, database_proxy: TcpProxy) -> Iterator[LiveServer]:
    """A web process whose database is behind the proxy (Stripe's webhook configured; Stripe itself unreachable)."""
    stripe = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
              "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"}  # fmt: skip
    with uvicorn_server(DATABASE_URL=proxied_database_url(database_proxy), **stream_environment(), **stripe) as web:
        yield web


def request(
    web: LiveServer, path: str, host: str = "localhost", *, session: str = "", body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:  # fmt: skip
    """GET (or POST `body`) on the web process with a Host header and, when given, a session cookie."""
    sent = {"Host": f"{host}:{web.port}", **(headers or {})}
    if session:
        sent["Cookie"] = f"sessionid={session}"
    url = f"http://127.0.0.1:{web.port}{path}"
    outgoing = urllib.request.Request(url, data=body, headers=sent, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(outgoing, timeout=15) as response:  # noqa: S310 (loopback only)
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def pages(web: LiveServer, tenant: Tenant) -> list[tuple[str, int, str]]:
    """(what, status, body) of a public page, the organisation's dashboard and its billing page."""
    answers = [("landing", *request(web, "/"))]
    for path in ("/", "/billing/"):
        answers.append((f"{tenant.host}{path}", *request(web, path, tenant.host, session=tenant.session)))
    return answers


def ready(web: LiveServer) -> int:
    return request(web, "/readyz")[0]


async def wait_for_readyz(web: LiveServer, status: int, within: float) -> float:
    """Seconds until /readyz answers `status` (fails after `within`)."""
    started = time.monotonic()
    while (answer := await asyncio.to_thread(ready, web)) != status:
        assert time.monotonic() - started < within, f"/readyz still {answer} after {within} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_a_database_restart_fails_readyz_and_pages_then_everything_recovers_by_itself(
    committed: Committed, feed: FeedProcess, proxied_web: LiveServer, database_proxy: TcpProxy
) -> None:
    web = proxied_web
    tenant = await committed.tenant("pro")
    assert await asyncio.to_thread(ready, web) == 200
    before = await asyncio.to_thread(pages, web, tenant)
    assert [status for _, status, _ in before] == [200, 200, 200], [(what, status) for what, status, _ in before]

    async with ws_connect(web, tenant.host, tenant.session, "symbols=AAPL,MSFT") as open_stream:
        assert (await recv_json(open_stream, within=10))["type"] == "snapshot"
        database_proxy.cut()
        cut_ms = now_ms()
        await wait_for_readyz(web, 503, within=10)
        during = await asyncio.to_thread(pages, web, tenant)
        for what, status, body in during:
            assert status == 503, f"{what}: {status} while the database is away"
            assert "temporarily unavailable" in body, what
            assert "Traceback" not in body
        # A new stream cannot be checked without the database: told to come back (SPEC's 1012).
        await live_support.expect_refused(web, tenant.host, tenant.session, "symbols=AAPL", 1012, "server_restart")
        # The open stream needs no database: its quotes go on.
        tally = await read_for(open_stream, 5, Tally(), until=lambda t: any(q["ts"] > cut_ms for _, q in t.quotes))
        assert any(q["ts"] > cut_ms for _, q in tally.quotes), "the open stream stopped with the database"

        database_proxy.restore()
        back = await wait_for_readyz(web, 200, within=15)
        after = [
            answer for _ in range(PAGES_AFTER_RECOVERY // 3) for answer in await asyncio.to_thread(pages, web, tenant)
        ]
        failed = [(what, status) for what, status, _ in after if status != 200]
        assert failed == [], f"{len(failed)} of {len(after)} pages failed after the database came back: {failed[:5]}"
        async with ws_connect(web, tenant.host, tenant.session, "symbols=AAPL,MSFT") as new_stream:
            assert (await recv_json(new_stream, within=10))["type"] == "snapshot"
    record_figure("fault: PostgreSQL restarted (proxy cut) → /readyz 200 again",
                  f"{back:.2f} s after the database was back; then {len(after)} pages all 200")  # fmt: skip


async def test_a_webhook_delivered_while_the_database_is_away_is_retried_by_stripe_and_applies_once(
    committed: Committed, proxied_web: LiveServer, database_proxy: TcpProxy
) -> None:
    web = proxied_web
    price = f"price_faults_{uuid.uuid4().hex[:8]}"
    plan = await committed.plan(name="Faults Pro", price_monthly=29, stripe_price_id=price, is_public=True)
    tenant = await committed.tenant("free")
    customer = f"cus_faults_{tenant.organisation.slug}"
    organisation = Organisation.objects.filter(pk=tenant.organisation.pk)
    await sync_to_async(organisation.update)(stripe_customer_id=customer)
    event = subscription_event("created", customer=customer, status="active", price=price,
                               subscription=f"sub_{tenant.organisation.slug}")  # fmt: skip

    def deliver() -> tuple[int, str]:
        """One delivery attempt, signed at its own time as Stripe signs each attempt."""
        body, signature = signed(event)
        return request(web, "/billing/webhook/", body=body,
                       headers={"Content-Type": "application/json", "Stripe-Signature": signature})  # fmt: skip

    def applied() -> tuple[str, int, int]:
        row = organisation.select_related("plan").get()
        lines = BillingHistory.objects.filter(organisation=row).count()
        return row.plan.slug, StripeEvent.objects.filter(pk=event["id"]).count(), lines

    try:
        database_proxy.cut()
        await wait_for_readyz(web, 503, within=10)
        status, _ = await asyncio.to_thread(deliver)
        assert status == 503, f"a webhook during the outage answered {status}: Stripe retries only non-2xx"
        assert await sync_to_async(applied)() == ("free", 0, 0), "nothing of the event was stored"

        database_proxy.restore()
        back = await wait_for_readyz(web, 200, within=15)
        retry, retry_body = await asyncio.to_thread(deliver)  # Stripe's retry
        assert retry == 200, retry_body
        again, again_body = await asyncio.to_thread(deliver)  # Stripe may deliver an event twice
        assert again == 200
        assert "duplicate" in again_body
        assert await sync_to_async(applied)() == (plan.slug, 1, 1), "applied once"
        record_figure("fault: webhook during a PostgreSQL outage", f"503 during it, applied once by the retry "
                      f"{back:.2f} s after the database was back")  # fmt: skip
    finally:
        await sync_to_async(StripeEvent.objects.filter(pk=event["id"]).delete)()
