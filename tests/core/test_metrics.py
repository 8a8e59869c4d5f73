"""`GET /metrics`: Prometheus text for operators only, with what the process and the feed are doing."""

import time

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from streaming.metrics import LATENCY_BUCKETS, FeedCollector, StreamCollector, StreamCounts
from tests.conftest import host_client
from tests.core.test_health import METRICS_TOKEN, logged_in, store_feed_status


def samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text answer (the official parser: a malformed answer raises)."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float | None:
    matching = [s.value for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) <= 1, f"{name} {labels}: {len(matching)} samples"
    return matching[0] if matching else None


# -- who may read them ----------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(METRICS_TOKEN=METRICS_TOKEN)
@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer wrong", f"Basic {METRICS_TOKEN}", METRICS_TOKEN])
def test_anyone_without_the_token_or_a_staff_session_is_refused(authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = host_client("localhost").get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["error"] == "not_authenticated"
    assert "tickerdeck" not in response.content.decode()


@pytest.mark.django_db
@override_settings(METRICS_TOKEN="")
def test_an_unset_token_lets_no_bearer_in() -> None:
    for authorization in ("Bearer", "Bearer ", "Bearer  "):
        assert host_client("localhost").get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 401


@pytest.mark.django_db
@override_settings(METRICS_TOKEN=METRICS_TOKEN)
@pytest.mark.parametrize("host", ["localhost", "acme.localhost", "10.0.0.7"])
def test_the_token_reads_them_on_any_host(host: str) -> None:
    """Prometheus scrapes each process at its address: no organisation, no allowed host needed."""
    response = host_client(host).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = samples(response.content.decode())
    assert value(found, "process_resident_memory_bytes") is not None
    assert value(found, "tickerdeck_stream_frames_out_total") is not None


@pytest.mark.django_db
def test_staff_read_them_and_other_members_do_not() -> None:
    assert logged_in("staff@example.com", staff=True).get("/metrics").status_code == 200
    assert logged_in("member@example.com", staff=False).get("/metrics").status_code == 401


@pytest.mark.django_db
@override_settings(METRICS_TOKEN=METRICS_TOKEN)
def test_only_get_is_answered() -> None:
    response = host_client("localhost").post("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


# -- what they say --------------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(METRICS_TOKEN=METRICS_TOKEN)
def test_stripe_webhooks_are_counted_by_result(client: Client) -> None:
    def refused() -> float:
        page = host_client("localhost").get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
        return value(samples(page.content.decode()), "tickerdeck_stripe_webhooks_total", result="bad_signature") or 0

    before = refused()
    response = host_client("localhost").post(
        "/billing/webhook/", b"{}", content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=00"
    )
    assert response.status_code == 400
    assert refused() == before + 1


@pytest.mark.django_db
@override_settings(METRICS_TOKEN=METRICS_TOKEN)
def test_the_feed_leaders_status_is_exported() -> None:
    now_ms = int(time.time() * 1000)
    store_feed_status(
        provider="simulated", connected=True, last_quote_ms=now_ms - 1500, stored_ms=now_ms, symbols=12,
        unserved={"ZZZZ": "beyond the vendor's symbol limit"}, reconnects=3, published=900, received=400,
        counts={"alerts_fired": 5, "alert_webhooks_sent": 4, "alert_webhooks_failed": 1},
    )  # fmt: skip
    page = host_client("localhost").get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    found = samples(page.content.decode())
    assert value(found, "tickerdeck_feed_up", provider="simulated") == 1
    assert value(found, "tickerdeck_feed_connected") == 1
    lag = value(found, "tickerdeck_feed_lag_seconds")
    assert lag is not None
    assert 1.5 <= lag < 60
    assert value(found, "tickerdeck_feed_symbols") == 12
    assert value(found, "tickerdeck_feed_unserved_symbols") == 1
    assert value(found, "tickerdeck_feed_reconnects_total") == 3
    assert value(found, "tickerdeck_feed_quotes_published_total") == 900
    assert value(found, "tickerdeck_feed_quotes_received_total") == 400
    assert value(found, "tickerdeck_alerts_fired_total") == 5
    assert value(found, "tickerdeck_alert_webhooks_sent_total") == 4
    assert value(found, "tickerdeck_alert_webhooks_failed_total") == 1


def test_without_a_feed_leader_feed_up_is_zero_and_nothing_else_is_made_up() -> None:
    found = [s for family in FeedCollector(None, time.time()).collect() for s in family.samples]
    assert [(s.name, s.value) for s in found] == [("tickerdeck_feed_up", 0)]


def test_latency_lands_in_the_prometheus_buckets_cumulatively() -> None:
    counts = StreamCounts()
    for seconds in (0.001, 0.005, 0.02, 0.02, 3.0, 99.0, -0.5):  # a negative age: clocks a little apart
        counts.latency_observe(seconds)
    [family] = [f for f in StreamCollector(None, counts).collect() if f.name.endswith("latency_seconds")]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets[repr(LATENCY_BUCKETS[0])] == 3  # 0.005 is "less than or equal"
    assert buckets["0.025"] == 5
    assert buckets["2.5"] == 5
    assert buckets["5.0"] == 6
    assert buckets["+Inf"] == 7
    assert [s.value for s in family.samples if s.name.endswith("_count")] == [7]
