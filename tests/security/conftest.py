"""The isolation audit's two organisations, committed once per module and removed after it.

Not once per session: committed rows (organisations, invitations, users) would then be there while other
modules' tests run on the same worker, and those count what they made.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.security.support import World, seed_world
from tests.streaming.conftest import (
    Committed,
    hub_cleanup,  # noqa: F401 (a fixture of the websocket probes)
)


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with django_db_blocker.unblock():
        rows = Committed()
        try:
            yield seed_world(rows)
        finally:
            rows.cleanup()
