"""Widget fixtures: organisations on the seeded plans (pro: 3 widgets, 200 viewers), widgets made by the service."""

from collections.abc import Callable
from typing import Any

import pytest

from tenants.models import Organisation
from tests.streaming.conftest import committed, feed, hub_cleanup  # noqa: F401 (fixtures of the websocket tests)
from tests.watchlists.conftest import inside
from widgets.models import Widget
from widgets.services import WidgetSpec, widget_create

SITE = "https://www.example.com"


@pytest.fixture
def pro_org(make_organisation: Any) -> Organisation:
    return make_organisation("initech", plan="pro", name="Initech")


@pytest.fixture
def free_org(make_organisation: Any) -> Organisation:
    return make_organisation("hooli", plan="free", name="Hooli")


@pytest.fixture
def make_widget() -> Callable[..., Widget]:
    def make(organisation: Organisation, name: str = "Homepage", **fields: Any) -> Widget:
        spec = WidgetSpec(**{"name": name, "symbols": ("AAPL", "MSFT"), "allowed_origins": (SITE,), **fields})
        with inside(organisation):
            return widget_create(organisation=organisation, spec=spec)

    return make
