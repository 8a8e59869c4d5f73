"""The widget token endpoint's per-address limit (RATE_LIMIT_WIDGET_TOKENS set low)."""

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from tenants.models import Organisation
from tests.conftest import host_client
from tests.core.ratelimit_support import fresh_address
from widgets.models import Widget

from .conftest import SITE

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db

TOKENS = 2


@pytest.fixture(autouse=True)
def low_token_limit(settings: Any) -> None:
    settings.RATE_LIMIT_WIDGET_TOKENS = f"{TOKENS} per hour"


def ask(widget: Widget, address: str, origin: str = SITE, **headers: str) -> "Response":
    return host_client("initech.localhost").post(
        f"/widgets/{widget.public_id}/token/", headers={"Origin": origin, **headers}, REMOTE_ADDR=address
    )


def test_past_the_limit_an_address_gets_429_with_retry_after_and_another_address_still_gets_tokens(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget, crowded = make_widget(pro_org), fresh_address()
    assert [ask(widget, crowded).status_code for _ in range(TOKENS)] == [200] * TOKENS

    refused = ask(widget, crowded)

    assert refused.status_code == 429
    body = json.loads(refused.content)
    assert body["error"] == "rate_limited"
    assert f"try again in {refused['Retry-After']} s" in body["message"]
    assert 3500 < int(refused["Retry-After"]) <= 3600
    assert refused["Cache-Control"] == "no-store"
    # The site on the widget's list may read it, Retry-After included, so its script waits that long.
    assert refused["Access-Control-Allow-Origin"] == SITE
    assert refused["Access-Control-Expose-Headers"] == "Retry-After"
    assert ask(widget, fresh_address()).status_code == 200


def test_a_429_to_another_site_carries_no_cors_header(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget, address = make_widget(pro_org), fresh_address()
    assert [ask(widget, address, origin="https://evil.example").status_code for _ in range(TOKENS)] == [403] * TOKENS

    refused = ask(widget, address, origin="https://evil.example")

    assert refused.status_code == 429  # refusals count too: a flood of them is a flood
    assert "Access-Control-Allow-Origin" not in refused
    assert "Access-Control-Expose-Headers" not in refused


def test_an_unknown_widget_past_the_limit_is_429_without_cors(pro_org: Organisation) -> None:
    address = fresh_address()
    client = host_client("initech.localhost")
    statuses = [
        client.post("/widgets/w_AAAAAAAAAAAAAAAA/token/", HTTP_ORIGIN=SITE, REMOTE_ADDR=address).status_code
        for _ in range(TOKENS + 1)
    ]
    assert statuses == [404] * TOKENS + [429]


def test_a_forged_x_forwarded_for_buys_no_tokens_without_a_declared_proxy(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget, address = make_widget(pro_org), fresh_address()
    statuses = [ask(widget, address, **{"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(TOKENS + 1)]
    assert statuses == [200] * TOKENS + [429]  # all from REMOTE_ADDR, whatever they claimed


def test_behind_a_declared_proxy_the_address_it_appended_is_limited(
    pro_org: Organisation, make_widget: Callable[..., Widget], settings: Any
) -> None:
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    widget, proxy, client, neighbour = make_widget(pro_org), "10.0.0.2", fresh_address(), fresh_address()
    statuses = [
        ask(widget, proxy, **{"X-Forwarded-For": f"198.51.100.{n}, {client}"}).status_code for n in range(TOKENS + 1)
    ]
    assert statuses == [200] * TOKENS + [429]  # what the client wrote before the proxy's entry is ignored
    assert ask(widget, proxy, **{"X-Forwarded-For": neighbour}).status_code == 200
