"""A connection that created an organisation is closed for good once the creation commits."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from accounts.services import owner_get_or_create
from billing.models import Plan
from tenants.db import connection_discard
from tenants.services.organisations import organisation_create
from tests.conftest import PASSWORD


@pytest.mark.django_db
def test_organisation_create_discards_the_connection_after_commit(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    owner = owner_get_or_create(email="discard@example.com", password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        organisation_create(name="Discard", slug="discard", owner=owner, plan=Plan.objects.get(slug="free"))
    assert connection_discard in callbacks


def test_connection_discard_closes_the_connection_outside_a_transaction(django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        connection.ensure_connection()
        raw = connection.connection
        connection_discard()
        assert raw is not None
        assert raw.closed, "closed for good: a pool would drop it"
        assert connection.connection is None
        connection.ensure_connection()  # the next query simply opens a new one
        assert connection.connection is not None


@pytest.mark.django_db
def test_connection_discard_leaves_an_open_transaction_alone() -> None:
    connection.ensure_connection()
    raw = connection.connection
    connection_discard()
    assert raw is not None
    assert connection.connection is raw
    assert not raw.closed
