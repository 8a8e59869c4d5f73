"""Helpers of the per-address limit tests: addresses of their own, a Redis that is not there."""

import random

from tests.live import free_port


def fresh_address() -> str:
    """An address no other test of this run counts against (the counters in Redis outlive a test)."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def unreachable_redis() -> str:
    """A Redis URL where nothing listens: connections are refused at once."""
    return f"redis://127.0.0.1:{free_port()}/0"
