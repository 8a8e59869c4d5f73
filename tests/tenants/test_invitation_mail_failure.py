"""An invitation whose e-mail cannot be sent is not saved: the inviter is told, and nothing is half done."""

import smtplib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.test import override_settings

from tenants.models import Invitation, Membership, Organisation
from tenants.services.team import InvitationNotSentError, invitation_create
from tests.tenants.conftest import Team, member_client, messages_of

pytestmark = pytest.mark.django_db

CaptureCallbacks = Callable[..., AbstractContextManager[Any]]
NOT_SENT = "We could not send the invitation e-mail to new@example.com just now"


class SMTPDownBackend(BaseEmailBackend):
    """An SMTP server that answers every message with an error."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        raise smtplib.SMTPException("421 4.3.2 Service not available")


class SMTPUnreachableBackend(BaseEmailBackend):
    """No SMTP server listening."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        raise ConnectionRefusedError(111, "Connection refused")


SMTP_DOWN = f"{__name__}.SMTPDownBackend"
SMTP_UNREACHABLE = f"{__name__}.SMTPUnreachableBackend"


@pytest.fixture
def send(django_capture_on_commit_callbacks: CaptureCallbacks) -> Callable[..., Any]:
    """POST the invite form as `inviter`, running after-commit callbacks as a committed request would."""

    def post(inviter: Membership, email: str, role: str = "member") -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return member_client(inviter).post("/members/invite/", {"email": email, "role": role})

    return post


def pending() -> list[tuple[str, str]]:
    return list(Invitation.objects.filter(accepted_at__isnull=True).values_list("email", "role"))


@pytest.mark.parametrize("backend", [SMTP_DOWN, SMTP_UNREACHABLE])
def test_when_the_e_mail_cannot_be_sent_no_invitation_is_saved_and_the_inviter_is_told(
    team: Team, send: Any, backend: str
) -> None:
    with override_settings(EMAIL_BACKEND=backend):
        response = send(team.admin, "new@example.com", "admin")

    assert response.status_code == 503
    body = response.content.decode()
    assert NOT_SENT in body
    assert "so no invitation was saved or changed. Please try again in a few minutes." in body
    assert 'value="new@example.com"' in body  # the form keeps what was typed
    assert pending() == []


def test_a_failed_send_again_leaves_the_invitation_as_it_was(team: Team, send: Any) -> None:
    send(team.owner, "new@example.com", "member")
    nonce = Invitation.objects.get().token_nonce

    with override_settings(EMAIL_BACKEND=SMTP_DOWN):
        response = send(team.owner, "new@example.com", "admin")

    assert response.status_code == 503
    assert NOT_SENT in response.content.decode()
    assert pending() == [("new@example.com", "member")]
    assert Invitation.objects.get().token_nonce == nonce


@override_settings(EMAIL_BACKEND=SMTP_DOWN)
def test_the_service_raises_and_rolls_back(team: Team) -> None:
    with pytest.raises(InvitationNotSentError) as refused:
        invitation_create(actor=team.owner, email="new@example.com", role="member", public_base_url="http://localhost")

    assert NOT_SENT in refused.value.message
    assert pending() == []


def test_the_invitation_is_sent_before_the_request_ends_not_after_commit(team: Team) -> None:
    # No on-commit callbacks run here: the e-mail must already be out when the service returns.
    invitation_create(actor=team.owner, email="new@example.com", role="member", public_base_url="http://localhost")

    assert [message.to for message in mail.outbox] == [["new@example.com"]]


def test_a_name_with_a_line_break_saved_before_names_were_checked_cannot_inject_a_header(team: Team, send: Any) -> None:
    Organisation.objects.filter(pk=team.organisation.pk).update(name="Acme\r\nBcc: victim@example.com")

    response = send(team.owner, "new@example.com")

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0].message()
    assert message["Bcc"] is None
    assert "\n" not in str(mail.outbox[0].subject)
    assert mail.outbox[0].recipients() == ["new@example.com"]
    assert "Invitation sent to new@example.com" in messages_of(response.client, "/members/")
