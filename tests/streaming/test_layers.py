"""The pipelined `group_send_many` against real Redis: ordinary group members receive every message."""

import asyncio

import pytest
from django.conf import settings

from streaming.layers import PipelinedPubSubChannelLayer, group_send_many

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="LOUD SKIP: the Redis channel layer needs REDIS_URL")


async def test_group_send_many_reaches_each_group_through_the_normal_receive() -> None:
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    sender = PipelinedPubSubChannelLayer(**config)
    receiver = PipelinedPubSubChannelLayer(**config)  # another process's layer, in effect
    try:
        channels = {}
        for group in ("t.alpha.q", "t.beta.q"):
            channels[group] = await receiver.new_channel()
            await receiver.group_add(group, channels[group])
        messages = [(group, {"type": "quotes.batch", "quotes": [[group, b"x" * n]]})
                    for n, group in enumerate(["t.alpha.q", "t.beta.q", "t.alpha.q"])]  # fmt: skip
        await group_send_many(sender, messages)
        async with asyncio.timeout(5):
            alpha = [await receiver.receive(channels["t.alpha.q"]) for _ in range(2)]
            beta = await receiver.receive(channels["t.beta.q"])
        assert [m["quotes"][0][1] for m in alpha] == [b"", b"xx"]  # both, in order
        assert beta["quotes"] == [["t.beta.q", b"x"]]
    finally:
        await sender.flush()
        await receiver.flush()
