"""Alert services: every write, the plan's max_alerts, bad input refused keyed by field, the webhook settings."""

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from alerts.models import Alert, AlertChannel, AlertCondition, AlertSettings
from alerts.selectors import alert_ids_evaluated, alert_list
from alerts.services import (
    ALERT_LIMIT,
    alert_create,
    alert_delete,
    alert_email_choose,
    alert_set_active,
    alert_settings_update,
    alert_update,
    webhook_secret_rotate,
)
from tenants.models import Organisation
from tests.alerts.conftest import make_alert, spec
from tests.watchlists.conftest import inside

pytestmark = pytest.mark.django_db


def test_create_makes_an_active_alert_and_its_creator_gets_its_e_mails(globex: Organisation) -> None:
    made = make_alert(globex, created_by_id=7, symbol=" aapl ", level=Decimal("195.5"),
                      channels=[AlertChannel.EMAIL, AlertChannel.IN_APP, AlertChannel.EMAIL])  # fmt: skip

    with inside(globex):
        stored = Alert.objects.get(pk=made.pk)
    assert (stored.symbol, stored.level, stored.active, stored.created_by_id) == ("AAPL", Decimal("195.5"), True, 7)
    assert stored.channels == ["in_app", "email"]
    assert stored.email_user_ids == [7]
    assert stored.description == "crossed above 195.50"


def test_the_free_plan_allows_three_alerts_then_refuses_with_the_limit(acme: Organisation) -> None:
    for n in range(3):
        make_alert(acme, name=f"Alert {n}")

    with pytest.raises(ValidationError) as exc_info:
        make_alert(acme, name="One too many")

    assert exc_info.value.code == ALERT_LIMIT
    assert exc_info.value.messages == [
        "Alert limit reached: the Free plan allows 3 alerts and Acme Capital already has 3. "
        "Delete one, or upgrade your plan for more."
    ]
    with inside(acme):
        assert alert_list().count() == 3


def test_after_a_downgrade_only_the_oldest_alerts_within_the_limit_are_evaluated(globex: Organisation) -> None:
    made = [make_alert(globex, name=f"Alert {n}") for n in range(5)]
    with inside(globex):
        assert alert_ids_evaluated(max_alerts=3) == {a.pk for a in made[:3]}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "  "}, "name", "Give the alert a name."),
        ({"symbol": "NOPE1"}, "symbol", "Not in the symbol directory: NOPE1."),
        ({"symbol": ""}, "symbol", "Name the symbol to watch"),
        ({"condition": "price_sideways"}, "condition", "Choose what the alert watches."),
        ({"level": Decimal("0")}, "level", "Enter a price above 0"),
        ({"level": Decimal("NaN")}, "level", "Enter a number."),
        ({"condition": AlertCondition.CHANGE_BELOW, "level": Decimal("0")}, "level", "not 0"),
        ({"cooldown_seconds": 0}, "cooldown_minutes", "between 1 minute and 7 days"),
        ({"channels": []}, "channels", "Choose at least one way"),
        ({"channels": ["sms"]}, "channels", "Choose at least one way"),
        ({"channels": [AlertChannel.WEBHOOK]}, "channels", "Set the organisation's webhook address"),
    ],
)
def test_bad_input_is_refused_keyed_by_field_and_nothing_is_saved(
    globex: Organisation, fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as exc_info:
        make_alert(globex, **fields)

    assert message in " ".join(exc_info.value.message_dict[field])
    with inside(globex):
        assert not Alert.objects.exists()


def test_update_pause_and_delete_change_one_alert(globex: Organisation) -> None:
    alert = make_alert(globex)
    with inside(globex):
        dip = spec(name="Apple dip", condition=AlertCondition.PRICE_BELOW, level=Decimal("90"))
        alert_update(organisation=globex, alert_id=alert.pk, spec=dip)
        alert_set_active(organisation=globex, alert_id=alert.pk, active=False)
        stored = Alert.objects.get()
        assert (stored.name, stored.condition, stored.level, stored.active) == (
            "Apple dip", "price_below", Decimal(90), False,
        )  # fmt: skip

        alert_delete(organisation=globex, alert_id=alert.pk)
        assert not Alert.objects.exists()
        with pytest.raises(Alert.DoesNotExist):
            alert_set_active(organisation=globex, alert_id=alert.pk, active=True)


def test_members_choose_e_mails_for_themselves_only_on_alerts_that_send_them(globex: Organisation) -> None:
    mailed = make_alert(globex, created_by_id=1, channels=[AlertChannel.EMAIL])
    in_app = make_alert(globex, name="Quiet one")
    with inside(globex):
        alert_email_choose(organisation=globex, alert_id=mailed.pk, user_id=2, chosen=True)
        alert_email_choose(organisation=globex, alert_id=mailed.pk, user_id=1, chosen=False)
        assert Alert.objects.get(pk=mailed.pk).email_user_ids == [2]
        with pytest.raises(ValidationError, match="sends no e-mails"):
            alert_email_choose(organisation=globex, alert_id=in_app.pk, user_id=2, chosen=True)


def test_an_alert_write_refuses_another_organisation_s_schema(globex: Organisation, acme: Organisation) -> None:
    with inside(acme), pytest.raises(RuntimeError, match="while the connection is on"):
        alert_create(organisation=globex, spec=spec())


def test_the_webhook_address_is_checked_and_its_secret_made_once_and_rotated(globex: Organisation, settings) -> None:
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    with inside(globex):
        for url, message in [("ftp://example.com/x", "http:// or https://"),
                             ("http://127.0.0.1:8000/hook", "private or local address"),
                             ("http://169.254.169.254/latest", "private or local address"),
                             ("https://user:pw@example.com/", "user names and passwords")]:  # fmt: skip
            with pytest.raises(ValidationError) as exc_info:
                alert_settings_update(organisation=globex, webhook_url=url)
            assert message in exc_info.value.message_dict["webhook_url"][0]
        assert not AlertSettings.objects.exists()

        settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
        first = alert_settings_update(organisation=globex, webhook_url=" http://127.0.0.1:8000/hook ")
        assert first.webhook_url == "http://127.0.0.1:8000/hook"
        assert first.webhook_secret.startswith("whsec_")
        assert len(first.webhook_secret) > 40
        assert alert_settings_update(organisation=globex, webhook_url="").webhook_secret == first.webhook_secret

        rotated = webhook_secret_rotate(organisation=globex)
        assert rotated.webhook_secret != first.webhook_secret
        assert AlertSettings.objects.get().webhook_secret == rotated.webhook_secret


def test_choosing_the_webhook_channel_needs_an_address(globex: Organisation, settings) -> None:
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    with inside(globex):
        alert_settings_update(organisation=globex, webhook_url="http://127.0.0.1:9/hook")
    alert = make_alert(globex, channels=[AlertChannel.WEBHOOK])
    assert alert.channels == ["webhook"]
