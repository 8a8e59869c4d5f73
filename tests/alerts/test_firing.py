"""Writing a firing: once per cooldown under the alert's row lock, whatever the engine believed; then told."""

from decimal import Decimal
from typing import Any

import pytest

from alerts.firing import alert_fire, alerts_email, alerts_fire
from alerts.index import Firing, Kind, Rule
from alerts.models import Alert, AlertChannel, AlertEvent, WebhookDelivery
from alerts.services import alert_email_choose, alert_set_active, alert_settings_update
from tenants.models import Membership, Organisation, Role
from tests.alerts.conftest import make_alert
from tests.watchlists.conftest import inside

pytestmark = pytest.mark.django_db

HOUR_MS = 3_600_000


def firing_of(organisation: Organisation, alert: Alert, ts: int, price: float = 105.2) -> Firing:
    rule = Rule(organisation.schema_name, alert.pk, alert.symbol, Kind(alert.condition), float(alert.level), HOUR_MS)
    return Firing(rule, 0, price, 5.2, ts)


def test_a_firing_is_written_once_per_cooldown_and_says_so(
    globex: Organisation, django_capture_on_commit_callbacks: Any
) -> None:
    alert = make_alert(globex)
    with django_capture_on_commit_callbacks() as notices:
        first = alert_fire(firing=firing_of(globex, alert, ts=1_000_000))
    again = alert_fire(firing=firing_of(globex, alert, ts=1_000_000 + HOUR_MS - 1))  # another engine, same crossing
    later = alert_fire(firing=firing_of(globex, alert, ts=1_000_000 + HOUR_MS))

    assert first.event_id is not None
    assert len(notices) == 1  # the in-app notice, sent after commit
    assert (again.event_id, again.quiet_until_ms) == (None, 1_000_000 + HOUR_MS)
    assert later.event_id is not None
    with inside(globex):
        events = list(AlertEvent.objects.order_by("quote_ts"))
        assert Alert.objects.get().last_fired_ts == 1_000_000 + HOUR_MS
    assert [(e.quote_ts, e.price, e.description) for e in events] == [
        (1_000_000, 105.2, "crossed above 105.00"), (1_000_000 + HOUR_MS, 105.2, "crossed above 105.00"),
    ]  # fmt: skip


def test_a_paused_or_edited_alert_does_not_fire_on_what_the_engine_read_before(globex: Organisation) -> None:
    alert = make_alert(globex)
    stale = firing_of(globex, alert, ts=1)
    with inside(globex):
        Alert.objects.filter(pk=alert.pk).update(level=Decimal("110"))
    assert alert_fire(firing=stale).event_id is None
    with inside(globex):
        Alert.objects.filter(pk=alert.pk).update(level=Decimal("105"))
        alert_set_active(organisation=globex, alert_id=alert.pk, active=False)
    fired, left = alerts_fire(firings=[stale])
    assert (fired[0].event_id, left) == (None, [])
    with inside(globex):
        assert not AlertEvent.objects.exists()


def test_a_webhook_alert_leaves_its_first_attempt_as_a_row(globex: Organisation, settings: Any) -> None:
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    with inside(globex):
        alert_settings_update(organisation=globex, webhook_url="http://127.0.0.1:9/hook")
    alert = make_alert(globex, channels=[AlertChannel.WEBHOOK])

    fired = alert_fire(firing=firing_of(globex, alert, ts=5))

    with inside(globex):
        delivery = WebhookDelivery.objects.get()
    assert fired.delivery == (delivery.next_attempt_at, delivery.pk)
    assert (delivery.attempt, delivery.status) == (1, "pending")


def test_e_mails_go_to_current_members_who_chose_them(
    globex: Organisation, add_member: Any, mailoutbox: list[Any]
) -> None:
    owner = Membership.objects.get(organisation=globex).user
    chooser = add_member(globex, "chooser@globex.example")
    leaver = add_member(globex, "leaver@globex.example", Role.ADMIN)
    add_member(globex, "other@globex.example")
    alert = make_alert(globex, created_by_id=owner.pk, channels=[AlertChannel.EMAIL])
    with inside(globex):
        for user in (chooser, leaver):
            alert_email_choose(organisation=globex, alert_id=alert.pk, user_id=user.pk, chosen=True)
    Membership.objects.filter(user=leaver).delete()  # left the organisation since

    fired = alert_fire(firing=firing_of(globex, alert, ts=7))
    alerts_email(fired=[fired])

    assert sorted(m.to[0] for m in mailoutbox) == ["chooser@globex.example", "owner@globex.example"]
    assert mailoutbox[0].subject == "AAPL crossed above 105.00: Apple breakout"
    assert "https://globex.localhost/alerts/history/" in mailoutbox[0].body
    with inside(globex):
        assert (AlertEvent.objects.get().emails_sent, AlertEvent.objects.get().email_error) == (2, "")
