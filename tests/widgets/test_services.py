"""Widget writes: validation of every field at once, the plan's widget and symbol limits, edits that notify viewers."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from tenants.models import Organisation
from tests.watchlists.conftest import inside
from watchlists.services import watchlist_create, watchlist_delete
from widgets.models import Widget
from widgets.services import (
    SYMBOL_LIMIT,
    WIDGET_LIMIT,
    WidgetSpec,
    widget_create,
    widget_delete,
    widget_set_active,
    widget_update,
)

from .conftest import SITE

pytestmark = pytest.mark.django_db


def spec(**fields: Any) -> WidgetSpec:
    return WidgetSpec(**{"name": "Homepage", "symbols": ("AAPL",), "allowed_origins": (SITE,), **fields})


def refusal(organisation: Organisation, **fields: Any) -> dict[str, list[str]]:
    with inside(organisation), pytest.raises(ValidationError) as refused:
        widget_create(organisation=organisation, spec=spec(**fields))
    return refused.value.message_dict


def test_a_widget_is_created_with_a_random_public_id_and_normalised_origins(pro_org: Organisation) -> None:
    with inside(pro_org):
        widget = widget_create(
            organisation=pro_org, spec=spec(symbols=("aapl", "msft", "AAPL"), allowed_origins=("HTTPS://Example.com/",))
        )
    assert widget.public_id.startswith("w_")
    assert len(widget.public_id) == 18
    assert widget.symbols == ["AAPL", "MSFT"]
    assert widget.allowed_origins == ["https://example.com"]
    assert widget.active


def test_every_bad_field_is_reported_together_and_nothing_is_saved(pro_org: Organisation) -> None:
    errors = refusal(pro_org, name=" ", kind="pie", theme="neon", symbols=("ZZZZZ9",), allowed_origins=("nope",))
    assert set(errors) == {"name", "kind", "theme", "symbols", "allowed_origins"}
    assert "Not in the symbol directory: ZZZZZ9" in errors["symbols"][0]
    with inside(pro_org):
        assert not Widget.objects.exists()


def test_symbols_or_a_watchlist_not_both_nor_neither(pro_org: Organisation) -> None:
    with inside(pro_org):
        watchlist = watchlist_create(organisation=pro_org, name="Tech", symbols=("AAPL",))
    assert "not both" in refusal(pro_org, watchlist_id=watchlist.pk)["symbols"][0]
    assert "at least one symbol" in refusal(pro_org, symbols=())["symbols"][0]
    assert "does not exist" in refusal(pro_org, symbols=(), watchlist_id=watchlist.pk + 1000)["watchlist"][0]


def test_a_widget_on_a_watchlist_loses_it_when_the_watchlist_is_deleted(pro_org: Organisation) -> None:
    with inside(pro_org):
        watchlist = watchlist_create(organisation=pro_org, name="Tech", symbols=("AAPL",))
        widget = widget_create(organisation=pro_org, spec=spec(symbols=(), watchlist_id=watchlist.pk))
        watchlist_delete(organisation=pro_org, watchlist_id=watchlist.pk)
        widget.refresh_from_db()
    assert widget.watchlist_id is None


def test_the_plan_limits_widgets_with_a_clear_refusal(free_org: Organisation, pro_org: Organisation) -> None:
    with inside(free_org), pytest.raises(ValidationError) as refused:
        widget_create(organisation=free_org, spec=spec())
    assert refused.value.code == WIDGET_LIMIT
    assert "the Free plan allows no widgets" in refused.value.messages[0]
    with inside(pro_org):
        for n in range(3):
            widget_create(organisation=pro_org, spec=spec(name=f"W{n}"))
        with pytest.raises(ValidationError) as refused:
            widget_create(organisation=pro_org, spec=spec(name="W4"))
    assert refused.value.code == WIDGET_LIMIT
    assert "allows 3 widgets and Initech already has 3" in refused.value.messages[0]


def test_the_plan_limits_symbols_per_widget(pro_org: Organisation) -> None:
    from symbols.models import Symbol

    symbols = tuple(Symbol.objects.order_by("symbol").values_list("symbol", flat=True)[:51])
    with inside(pro_org), pytest.raises(ValidationError) as refused:
        widget_create(organisation=pro_org, spec=spec(symbols=symbols))
    assert refused.value.error_dict["symbols"][0].code == SYMBOL_LIMIT


def test_names_are_unique_ignoring_case(pro_org: Organisation, make_widget: Callable[..., Widget]) -> None:
    make_widget(pro_org, "Homepage")
    assert "already a widget called" in refusal(pro_org, name="HOMEPAGE")["name"][0]


def test_edit_revoke_and_delete_tell_open_viewers(
    pro_org: Organisation, make_widget: Callable[..., Widget], django_capture_on_commit_callbacks: Any
) -> None:
    widget = make_widget(pro_org)
    with inside(pro_org), django_capture_on_commit_callbacks() as callbacks:
        widget_update(organisation=pro_org, widget_id=widget.pk, spec=spec(symbols=("MSFT",), theme="dark"))
        widget_set_active(organisation=pro_org, widget_id=widget.pk, active=False)
        widget_set_active(organisation=pro_org, widget_id=widget.pk, active=False)  # no change: no message
        widget_delete(organisation=pro_org, widget_id=widget.pk)
    assert len(callbacks) == 3


def test_writes_refuse_to_run_in_another_organisation_schema(
    pro_org: Organisation, free_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    with inside(free_org), pytest.raises(RuntimeError):
        widget_set_active(organisation=pro_org, widget_id=widget.pk, active=False)
    with inside(free_org), pytest.raises(Widget.DoesNotExist):
        widget_set_active(organisation=free_org, widget_id=widget.pk, active=False)
