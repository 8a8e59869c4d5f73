"""The alert pages over HTTP on an organisation's host: members read and choose e-mails, admins change."""

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from alerts.models import Alert, AlertChannel, AlertEvent, AlertSettings, DeliveryStatus, WebhookDelivery
from tenants.models import Organisation, Role
from tests.alerts.conftest import make_alert
from tests.watchlists.conftest import inside, signed_in

pytestmark = pytest.mark.django_db


def body(response: Any) -> str:
    return str(response.content.decode())


@pytest.fixture
def owner(globex: Organisation) -> User:
    return User.objects.get(email="owner@globex.example")


@pytest.fixture
def owner_client(globex: Organisation, owner: User) -> Client:
    return signed_in(globex, owner)


@pytest.fixture
def member(globex: Organisation, add_member: Any) -> User:
    return add_member(globex, "member@globex.example", Role.MEMBER)


@pytest.fixture
def member_client(globex: Organisation, member: User) -> Client:
    return signed_in(globex, member)


def form(**fields: Any) -> dict[str, Any]:
    values = {"name": "Apple breakout", "symbol": "aapl", "condition": "price_above", "level": "195.5",
              "cooldown_minutes": "15", "channels": ["in_app", "email"]}  # fmt: skip
    return {**values, **fields}


def test_an_owner_creates_an_alert_from_the_list_page(globex: Organisation, owner: User, owner_client: Client) -> None:
    page = body(owner_client.get("/alerts/"))
    assert "0 of 50 alerts on the Pro plan" in page
    assert '<a href="/alerts/">Alerts</a>' in page  # the navigation
    assert 'button--ghost" href="/alerts/">Alerts</a>' in body(owner_client.get("/"))  # and the dashboard's
    response = owner_client.post("/alerts/new/", form())

    assert response.status_code == 302
    with inside(globex):
        alert = Alert.objects.get()
    assert (alert.symbol, alert.level, alert.cooldown_seconds, alert.channels) == (
        "AAPL", Decimal("195.5"), 900, ["in_app", "email"],
    )  # fmt: skip
    assert alert.email_user_ids == [owner.pk]
    listing = body(owner_client.get("/alerts/"))
    assert "Apple breakout" in listing
    assert "Stop e-mails" in listing


def test_the_create_form_is_prefilled_from_the_watchlist_link(owner_client: Client) -> None:
    page = body(owner_client.get("/alerts/?symbol=msft"))
    assert 'name="symbol" value="MSFT"' in page
    assert 'value="MSFT alert"' in page


def test_the_plan_limit_is_refused_on_the_form_with_a_link_to_billing(acme: Organisation) -> None:
    client = signed_in(acme, User.objects.get(email="owner@acme.example"))
    for n in range(3):
        make_alert(acme, name=f"Alert {n}")

    page = body(client.get("/alerts/"))
    assert "Alert limit reached: the Free plan allows 3 alerts" in page

    response = client.post("/alerts/new/", form(name="Fourth", channels=["in_app"]))

    assert response.status_code == 400
    assert "Alert limit reached: the Free plan allows 3 alerts and Acme Capital already has 3." in body(response)
    assert 'href="/billing/"' in body(response)


def test_bad_input_is_shown_on_the_field(owner_client: Client) -> None:
    response = owner_client.post("/alerts/new/", form(symbol="NOPE1", level="-3"))

    assert response.status_code == 400
    page = body(response)
    assert "Not in the symbol directory: NOPE1." in page
    assert "Enter a price above 0" in page


def test_a_member_reads_alerts_and_chooses_e_mails_but_cannot_change_them(
    globex: Organisation, member: User, member_client: Client
) -> None:
    alert = make_alert(globex, channels=[AlertChannel.IN_APP, AlertChannel.EMAIL])

    page = body(member_client.get("/alerts/"))
    assert "Apple breakout" in page
    assert 'action="/alerts/new/"' not in page
    changes = ["/alerts/new/", "/alerts/settings/", "/alerts/settings/rotate/",
               *(f"/alerts/{alert.pk}/{action}/" for action in ("edit", "active", "delete"))]  # fmt: skip
    for url in changes:
        assert member_client.post(url, form()).status_code == 403, url
    assert member_client.get(f"/alerts/{alert.pk}/").status_code == 403

    assert member_client.post(f"/alerts/{alert.pk}/email/", {"chosen": "1"}).status_code == 302
    with inside(globex):
        assert Alert.objects.get().email_user_ids == [member.pk]
    assert member_client.get("/alerts/history/").status_code == 200


def test_an_admin_edits_pauses_and_deletes(globex: Organisation, owner_client: Client) -> None:
    alert = make_alert(globex)
    assert 'value="105"' in body(owner_client.get(f"/alerts/{alert.pk}/"))

    owner_client.post(f"/alerts/{alert.pk}/edit/", form(name="Renamed", level="120", channels=["in_app"]))
    owner_client.post(f"/alerts/{alert.pk}/active/", {"active": "0"})
    with inside(globex):
        stored = Alert.objects.get()
    assert (stored.name, stored.level, stored.active) == ("Renamed", Decimal(120), False)
    assert "Paused" in body(owner_client.get("/alerts/"))

    assert owner_client.post(f"/alerts/{alert.pk}/delete/").status_code == 302
    assert owner_client.get(f"/alerts/{alert.pk}/").status_code == 404
    with inside(globex):
        assert not Alert.objects.exists()


def test_another_organisation_s_alert_is_a_404(globex: Organisation, acme: Organisation, owner_client: Client) -> None:
    theirs = make_alert(acme)
    assert owner_client.get(f"/alerts/{theirs.pk}/").status_code == 404
    assert owner_client.post(f"/alerts/{theirs.pk}/delete/").status_code == 404


def test_the_history_shows_each_event_and_its_deliveries_with_their_status(
    globex: Organisation, member_client: Client
) -> None:
    alert = make_alert(globex)
    with inside(globex):
        event = AlertEvent.objects.create(
            alert=alert, alert_name=alert.name, symbol="AAPL", condition=alert.condition, level=alert.level,
            description=alert.description, price=105.02, change_pct=5.02, quote_ts=1_700_000_000_000,
            delay_minutes=15, channels=["in_app", "webhook"],
        )  # fmt: skip
        now = timezone.now()
        WebhookDelivery.objects.create(event=event, attempt=1, status=DeliveryStatus.FAILED, next_attempt_at=now,
                                       sent_at=now, response_status=500, duration_ms=12)  # fmt: skip
        WebhookDelivery.objects.create(event=event, attempt=2, status=DeliveryStatus.SUCCEEDED, next_attempt_at=now,
                                       sent_at=now, response_status=200, duration_ms=9)  # fmt: skip
        WebhookDelivery.objects.create(event=event, attempt=3, next_attempt_at=now)

    page = body(member_client.get("/alerts/history/"))

    assert "1 fired alert," in page
    assert "AAPL</strong> crossed above 105.00" in page
    assert "105.02" in page
    assert "delayed 15 min" in page
    attempts = page[page.index("Webhook attempt 1:") :]
    assert attempts.index("HTTP 500") < attempts.index("Webhook attempt 2:") < attempts.index("HTTP 200")
    assert attempts.index("Webhook attempt 3:") < attempts.index("due ")


def test_the_signing_secret_is_shown_once_then_only_its_start(
    globex: Organisation, owner_client: Client, settings
) -> None:
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    assert "A secret is made when you first save the address" in body(owner_client.get("/alerts/settings/"))

    first = owner_client.post("/alerts/settings/", {"webhook_url": "http://127.0.0.1:9/hook"})

    with inside(globex):
        secret = AlertSettings.objects.get().webhook_secret
    assert first.status_code == 200
    assert secret in body(first)
    assert first["Cache-Control"] == "no-store"
    later = body(owner_client.get("/alerts/settings/"))
    assert secret not in later
    assert secret[:10] + "…" in later

    rotated = owner_client.post("/alerts/settings/rotate/")
    with inside(globex):
        new_secret = AlertSettings.objects.get().webhook_secret
    assert new_secret != secret
    assert new_secret in body(rotated)


def test_a_private_webhook_address_is_refused_in_production(owner_client: Client, settings) -> None:
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    settings.DEBUG = False
    response = owner_client.post("/alerts/settings/", {"webhook_url": "http://10.0.0.7/hook"})
    assert response.status_code == 400
    assert "Webhooks cannot go to 10.0.0.7" in body(response)
