"""`/healthz` and `/readyz` answer on every host, tenant or not; only operators learn why `/readyz` fails."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.connection
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import Client, override_settings

from accounts.models import User
from core.health import readiness_checks
from streaming.state import stream_state
from tests.conftest import PASSWORD, host_client

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def redis_down() -> Iterator[None]:
    with override_settings(REDIS_URL=UNREACHABLE_REDIS_URL):
        yield


def logged_in(email: str, *, staff: bool) -> Client:
    User.objects.create_user(email=email, password=PASSWORD, is_staff=staff)
    client = host_client("localhost")
    client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert "_auth_user_id" in client.session
    return client


@pytest.mark.parametrize("host", ["localhost", "acme.localhost", "unknown.localhost", "10.0.0.7"])
def test_health_and_readiness_answer_on_every_host(make_organisation: Any, host: str) -> None:
    make_organisation("acme")
    client = host_client(host)

    assert json.loads(client.get("/healthz").content) == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert json.loads(ready.content) == {"status": "ok"}


def test_an_anonymous_caller_learns_only_that_the_service_is_unavailable(redis_down: None) -> None:
    response = host_client("localhost").get("/readyz")

    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "unavailable"}


def test_staff_see_which_check_failed_and_why(redis_down: None) -> None:
    client = logged_in("staff@tickerdeck.example", staff=True)

    response = client.get("/readyz")

    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"].startswith("unreachable: ConnectionError")
    assert "127.0.0.1:1" in body["checks"]["channel_layer"]  # the reason, not just a class name


def test_a_signed_in_user_who_is_not_staff_gets_the_generic_answer(redis_down: None) -> None:
    client = logged_in("member@acme.example", staff=False)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "unavailable"}


@override_settings(METRICS_TOKEN=METRICS_TOKEN)
def test_the_metrics_token_shows_the_details(redis_down: None) -> None:
    response = host_client("10.0.0.7").get("/readyz", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")

    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["checks"]["channel_layer"].startswith("unreachable")


@pytest.mark.parametrize(
    ("token_setting", "authorization"),
    [(METRICS_TOKEN, "Bearer wrong-token"), (METRICS_TOKEN, f"Basic {METRICS_TOKEN}"), (METRICS_TOKEN, METRICS_TOKEN),
     ("", "Bearer "), ("", "Bearer")],
    ids=["wrong-token", "wrong-scheme", "no-scheme", "unset-and-empty", "unset-and-missing"],
)  # fmt: skip
def test_anything_but_the_metrics_token_gets_the_generic_answer(
    redis_down: None, token_setting: str, authorization: str
) -> None:
    with override_settings(METRICS_TOKEN=token_setting):
        response = host_client("localhost").get("/readyz", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "unavailable"}


def test_readiness_reuses_one_redis_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    if not settings.REDIS_URL:
        pytest.skip("the channel layer is in memory: no Redis to connect to")
    connects: list[object] = []
    original = redis.connection.AbstractConnection.connect

    def counting_connect(self: redis.connection.AbstractConnection) -> None:
        connects.append(self)
        original(self)

    monkeypatch.setattr(redis.connection.AbstractConnection, "connect", counting_connect)
    client = host_client("localhost")

    for _ in range(20):
        assert client.get("/readyz").status_code == 200
    assert readiness_checks()["channel_layer"] == "ok"

    assert len({id(connection) for connection in connects}) <= 1


FEED_STATUS = {"holder": "feed-test", "provider": "simulated", "history": True, "connected": True,
               "last_quote_ms": None, "symbols": 3, "unserved": {}, "error": None, "reconnects": 0}  # fmt: skip


def store_feed_status(**fields: Any) -> None:
    """What a feed leader stores each second (streaming.feed.Feed._store_status)."""

    async def store() -> None:
        await stream_state().feed_status_store({**FEED_STATUS, **fields}, 5000)

    async_to_sync(store)()


@override_settings(FEED_STALE_SECONDS=30, METRICS_TOKEN=METRICS_TOKEN)
def test_readiness_fails_without_a_feed_leader_and_operators_see_its_status() -> None:

    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    store_feed_status(stored_ms=int(time.time() * 1000) - 31_000)  # a leader gone quiet 31 s ago
    stale = host_client("localhost").get("/readyz", headers=bearer)
    assert stale.status_code == 503
    assert json.loads(stale.content)["checks"]["feed"].startswith("stale: the feed leader last reported 3")

    store_feed_status(stored_ms=int(time.time() * 1000), error="Alpaca refused the key", reconnects=4)
    fresh = host_client("localhost").get("/readyz", headers=bearer)
    body = json.loads(fresh.content)
    assert fresh.status_code == 200
    assert body["checks"]["feed"] == "ok"
    assert (body["feed"]["provider"], body["feed"]["error"], body["feed"]["reconnects"]) == (
        "simulated", "Alpaca refused the key", 4,
    )  # fmt: skip
    assert "feed" not in json.loads(host_client("localhost").get("/readyz").content)  # only operators


@override_settings(FEED_STALE_SECONDS=30)
def test_readiness_names_a_missing_feed_leader() -> None:
    redis.Redis.from_url(settings.REDIS_URL).delete(settings.STREAM_REDIS_PREFIX + "feed:status")
    assert readiness_checks()["feed"].startswith("no feed leader")


def test_staff_see_the_feed_status_page_and_others_do_not() -> None:
    store_feed_status(stored_ms=int(time.time() * 1000), unserved={"NVDA": "symbol_limit"})
    staff = logged_in("feed-staff@tickerdeck.example", staff=True)
    page = staff.get("/admin/feed/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Simulated (seeded, made-up prices)" in text
    assert "<td>NVDA</td><td>symbol_limit</td>" in text
    member = logged_in("feed-member@tickerdeck.example", staff=False)
    assert member.get("/admin/feed/").status_code in (302, 403)
