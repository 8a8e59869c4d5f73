"""`/healthz` and `/readyz` answer on every host, tenant or not."""

import json
from typing import Any

import pytest
from django.test import override_settings

from tests.conftest import host_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["localhost", "acme.localhost", "unknown.localhost", "10.0.0.7"])
def test_health_and_readiness_answer_on_every_host(make_organisation: Any, host: str) -> None:
    make_organisation("acme")
    client = host_client(host)

    assert json.loads(client.get("/healthz").content) == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert json.loads(ready.content)["checks"] == {"database": "ok", "channel_layer": "ok"}


def test_readiness_fails_when_the_channel_layer_is_unreachable() -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = host_client("localhost").get("/readyz")

    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["channel_layer"].startswith("unreachable")
    assert body["checks"]["database"] == "ok"
