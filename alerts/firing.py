"""What happens when the engine finds an alert's condition met: the event is written once, then told.

Runs on a worker thread of the alert engine, never in the feed's publishing loop. The alert's row
is locked and its `last_fired_ts` compared with the quote's time, so a crossing that two engines
saw (a failover, an old leader still finishing its queue) is written once per cooldown whatever
Redis remembers. In one transaction: the event, the first webhook attempt (a row, so it survives a
restart), and, after commit, the in-app notice on the organisation's control group. E-mails go
after that, one message per member who chose them, and their outcome is kept on the event.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import InterfaceError, OperationalError, ProgrammingError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from streaming.services import alert_notify_fired
from tenants.models import Organisation

from .index import Firing
from .models import Alert, AlertChannel, AlertEvent, WebhookDelivery, condition_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fired:
    """The outcome of one firing: written (with its event), or refused because the alert was quiet."""

    firing: Firing
    event_id: int | None = None
    quiet_until_ms: int | None = None  # set when the database says the alert is in its cooldown
    delivery: tuple[datetime, int] | None = None  # (due, id) of the first webhook attempt
    email_user_ids: tuple[int, ...] = ()


def alerts_fire(*, firings: list[Firing]) -> tuple[list[Fired], list[Firing]]:
    """Write each firing that is still due (its alert active, unchanged and out of its cooldown).

    Returns the outcomes, and the firings left when the database went away (to try again later): what
    was written before stays written, and the cooldown guard makes a second try of it a no-op.
    """
    done: list[Fired] = []
    for n, firing in enumerate(firings):
        try:
            done.append(alert_fire(firing=firing))
        except ProgrammingError:  # the organisation's schema was dropped meanwhile: nothing to write
            logger.info("alert %s of %s not written: its schema is gone", firing.rule.alert_id, firing.rule.schema)
            done.append(Fired(firing))
        except (OperationalError, InterfaceError):
            logger.exception("the database went away while writing alert firings; retrying the rest")
            return done, firings[n:]
    return done, []


def alert_fire(*, firing: Firing) -> Fired:
    rule = firing.rule
    with schema_context(rule.schema), transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=rule.alert_id, active=True).first()
        if alert is None or (alert.symbol, alert.condition, float(alert.level)) != (
            rule.symbol,
            rule.kind.value,
            rule.level,
        ):
            return Fired(firing)  # deleted, paused or edited since the engine read it: the reload follows
        if alert.last_fired_ts is not None and firing.quote_ts < alert.last_fired_ts + alert.cooldown_seconds * 1000:
            return Fired(firing, quiet_until_ms=alert.last_fired_ts + alert.cooldown_seconds * 1000)
        alert.last_fired_ts = firing.quote_ts
        alert.save(update_fields=["last_fired_ts"])
        event = AlertEvent.objects.create(
            alert=alert,
            alert_name=alert.name,
            symbol=alert.symbol,
            condition=alert.condition,
            level=alert.level,
            description=condition_text(alert.condition, alert.level),
            price=firing.price,
            change_pct=firing.change_pct,
            quote_ts=firing.quote_ts,
            delay_minutes=firing.delay_minutes,
            channels=list(alert.channels),
        )
        delivery = None
        if AlertChannel.WEBHOOK in alert.channels:
            row = WebhookDelivery.objects.create(event=event, attempt=1, next_attempt_at=timezone.now())
            delivery = (row.next_attempt_at, row.pk)
        if AlertChannel.IN_APP in alert.channels:
            alert_notify_fired(schema_name=rule.schema, alert=event_notice(event))
        emails = tuple(alert.email_user_ids) if AlertChannel.EMAIL in alert.channels else ()
    return Fired(firing, event_id=event.pk, delivery=delivery, email_user_ids=emails)


def event_notice(event: AlertEvent) -> dict[str, object]:
    """SPEC's alert object: {"id","name","symbol","condition","price","ts"} (id: the alert's; ts: the quote's)."""
    return {
        "id": event.alert_id,
        "name": event.alert_name,
        "symbol": event.symbol,
        "condition": event.description,
        "price": event.price,
        "ts": event.quote_ts,
    }


def alerts_email(*, fired: list[Fired]) -> None:
    """Send the e-mails of written firings; each event keeps how many went out, or why none did."""
    for outcome in fired:
        if outcome.event_id is not None and outcome.email_user_ids:
            try:
                _event_email(outcome.firing.rule.schema, outcome.event_id, outcome.email_user_ids)
            except Exception:  # one organisation's broken row or template must not stop the others' mail
                logger.exception("alert e-mails of event %s in %s failed", outcome.event_id, outcome.firing.rule.schema)


def _event_email(schema: str, event_id: int, user_ids: tuple[int, ...]) -> None:
    organisation = Organisation.objects.get(schema_name=schema)
    # Only members still in the organisation, whose accounts are active, hear of it.
    addresses = list(
        User.objects.filter(pk__in=user_ids, is_active=True, memberships__organisation=organisation)
        .order_by("email")
        .values_list("email", flat=True)
    )
    with schema_context(schema):
        event = AlertEvent.objects.get(pk=event_id)
        if not addresses:
            return
        context = {"event": event, "organisation": organisation, "history_url": _history_url(organisation)}
        subject = " ".join(render_to_string("alerts/email/fired_subject.txt", context).split())
        body = render_to_string("alerts/email/fired_body.txt", context)
        messages = [EmailMessage(subject, body, None, [address]) for address in addresses]
        try:
            sent = get_connection().send_messages(messages) or 0
            event.emails_sent, event.email_error = sent, ""
        except Exception as exc:  # SMTP refusals come as many exception types; the history shows which
            logger.warning("alert e-mail of %s event %s failed: %s", schema, event_id, exc)
            event.email_error = f"{type(exc).__name__}: {exc}"[:300]
        event.save(update_fields=["emails_sent", "email_error"])


def _history_url(organisation: Organisation) -> str:
    domain = organisation.get_primary_domain()
    host = domain.domain if domain is not None else f"{organisation.slug}.{settings.BASE_DOMAIN}"
    if settings.DEBUG:
        return f"http://{host}:{settings.PORT}/alerts/history/"
    return f"https://{host}/alerts/history/"
