"""The pipelined `group_send_many` against real Redis: ordinary group members receive every message."""

import asyncio

import pytest
import redis
from django.conf import settings

from streaming.layers import BufferedPubSub, PipelinedPubSubChannelLayer, group_send_many

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


async def test_the_layer_spreads_organisations_over_two_redis_servers(two_redis_servers: list[str]) -> None:
    config = {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "hosts": two_redis_servers}
    sender, receiver = PipelinedPubSubChannelLayer(**config), PipelinedPubSubChannelLayer(**config)
    groups = [f"t.org{n}.q" for n in range(40)]
    try:
        channels = {group: await receiver.new_channel() for group in groups}
        for group, channel in channels.items():
            await receiver.group_add(group, channel)
        await group_send_many(
            sender, [(group, {"type": "quotes.batch", "quotes": [[group, b"q"]]}) for group in groups]
        )
        async with asyncio.timeout(5):
            received = {group: await receiver.receive(channel) for group, channel in channels.items()}
        subscribed = [len(redis.Redis.from_url(url).pubsub_channels()) for url in two_redis_servers]
    finally:
        await sender.flush()
        await receiver.flush()

    assert all(received[group]["quotes"] == [[group, b"q"]] for group in groups)
    assert sum(subscribed) >= len(groups)
    assert min(subscribed) >= len(groups) // 4, f"both servers carry groups: {subscribed}"


async def test_a_burst_larger_than_a_socket_read_arrives_whole_and_in_order_then_a_late_message_too() -> None:
    """Messages already read from the socket are taken without a timer (BufferedPubSub), including
    replies cut across two reads; a message after a quiet spell is waited for as before."""
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    sender, receiver = PipelinedPubSubChannelLayer(**config), PipelinedPubSubChannelLayer(**config)
    try:
        channel = await receiver.new_channel()
        await receiver.group_add("t.burst.q", channel)
        burst = [("t.burst.q", {"type": "quotes.batch", "n": n, "pad": b"x" * 1000}) for n in range(300)]
        await group_send_many(sender, burst)  # ~300 KB: several socket reads of at most 64 KB
        async with asyncio.timeout(10):
            received = [await receiver.receive(channel) for _ in burst]
            await asyncio.sleep(0.3)  # quiet: the reader waits with its timeout again
            await group_send_many(sender, [("t.burst.q", {"type": "quotes.batch", "n": "late"})])
            late = await receiver.receive(channel)
        shard_pubsubs = [shard._pubsub for shard in receiver._get_layer()._shards]
    finally:
        await sender.flush()
        await receiver.flush()

    assert [m["n"] for m in received] == list(range(300))
    assert all(m["pad"] == b"x" * 1000 for m in received)
    assert late["n"] == "late"
    assert shard_pubsubs
    assert all(isinstance(p, BufferedPubSub) for p in shard_pubsubs)
