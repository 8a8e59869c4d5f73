"""After a committed change, the organisation's control group hears {"type": "watchlist.changed", ...}."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ValidationError

from streaming.groups import control_group
from tenants.models import Organisation
from tests.watchlists.conftest import InSchema
from watchlists.services import (
    watchlist_add_symbols,
    watchlist_create,
    watchlist_delete,
    watchlist_remove_symbol,
    watchlist_rename,
    watchlist_reorder,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def layer(settings: Any) -> BaseChannelLayer:
    """The in-memory channel layer (the Redis one needs the listener and sender on one event loop)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layer = get_channel_layer()
    assert channel_layer is not None
    return channel_layer


@pytest.fixture
def listen(layer: BaseChannelLayer) -> Callable[[Organisation], Callable[[], list[dict[str, Any]]]]:
    """Join a channel to an organisation's control group; the returned function drains what arrived."""

    def join(organisation: Organisation) -> Callable[[], list[dict[str, Any]]]:
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(control_group(organisation.schema_name), channel)

        async def drain() -> list[dict[str, Any]]:
            received = []
            while True:
                try:
                    received.append(await asyncio.wait_for(layer.receive(channel), timeout=0.05))
                except TimeoutError:
                    return received

        return async_to_sync(drain)

    return join


def changed(watchlist_id: int) -> dict[str, Any]:
    return {"type": "watchlist.changed", "watchlist_id": watchlist_id}


WRITES: dict[str, Any] = {
    "rename": lambda org, pk: watchlist_rename(organisation=org, watchlist_id=pk, name="Renamed"),
    "add": lambda org, pk: watchlist_add_symbols(organisation=org, watchlist_id=pk, symbols=["NVDA"]),
    "remove": lambda org, pk: watchlist_remove_symbol(organisation=org, watchlist_id=pk, symbol="AAPL"),
    "reorder": lambda org, pk: watchlist_reorder(organisation=org, watchlist_id=pk, symbol="MSFT", position=0),
    "delete": lambda org, pk: watchlist_delete(organisation=org, watchlist_id=pk),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_each_change_is_announced_once_after_commit(
    globex: Organisation, in_schema: InSchema, make_watchlist, listen, django_capture_on_commit_callbacks, write: Any
):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT"))
    received = listen(globex)

    with in_schema(globex), django_capture_on_commit_callbacks() as callbacks:
        write(globex, watchlist.pk)
        assert received() == []  # nothing leaves before the commit

    assert len(callbacks) == 1
    callbacks[0]()
    assert received() == [changed(watchlist.pk)]


def test_creating_a_watchlist_is_announced(
    globex: Organisation, in_schema: InSchema, listen, django_capture_on_commit_callbacks
):
    received = listen(globex)

    with in_schema(globex), django_capture_on_commit_callbacks(execute=True):
        watchlist = watchlist_create(organisation=globex, name="Tech")

    assert received() == [changed(watchlist.pk)]


def test_only_the_organisations_own_control_group_hears_it(
    acme: Organisation, globex: Organisation, in_schema: InSchema, make_watchlist, listen,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    watchlist = make_watchlist(globex, "Tech", ("AAPL",))
    globex_heard, acme_heard = listen(globex), listen(acme)

    with in_schema(globex), django_capture_on_commit_callbacks(execute=True):
        watchlist_add_symbols(organisation=globex, watchlist_id=watchlist.pk, symbols=["MSFT"])

    assert globex_heard() == [changed(watchlist.pk)]
    assert acme_heard() == []


def test_a_refused_change_announces_nothing(
    acme: Organisation, in_schema: InSchema, make_watchlist, listen, django_capture_on_commit_callbacks
):
    watchlist = make_watchlist(acme, "Tech", ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA"))
    received = listen(acme)

    with in_schema(acme), django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ValidationError):
            watchlist_add_symbols(organisation=acme, watchlist_id=watchlist.pk, symbols=["META"])
        with pytest.raises(ValidationError):
            watchlist_create(organisation=acme, name="Second")

    assert callbacks == []
    assert received() == []


def test_a_change_that_changes_nothing_announces_nothing(
    globex: Organisation, in_schema: InSchema, make_watchlist, django_capture_on_commit_callbacks
):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT"))

    with in_schema(globex), django_capture_on_commit_callbacks() as callbacks:
        watchlist_reorder(organisation=globex, watchlist_id=watchlist.pk, symbol="AAPL", position=0)
        watchlist_rename(organisation=globex, watchlist_id=watchlist.pk, name="Tech")

    assert callbacks == []
