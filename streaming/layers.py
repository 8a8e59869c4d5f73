"""The channel layer: channels-redis' pub/sub layer, plus one pipelined `group_send_many`.

The feed sends one message per watching organisation per batch. Sent one by one, each is a Redis
round trip under the shard's lock (50 organisations: 50 round trips per batch); pipelined, a whole
batch is one round trip per shard. The wire format and channel names stay the layer's own, so
subscribers receive these messages through the ordinary `receive`.
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from channels.layers import BaseChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

GroupMessage = tuple[str, dict[str, Any]]


class PipelinedPubSubChannelLayer(RedisPubSubChannelLayer):
    async def group_send_many(self, messages: Iterable[GroupMessage]) -> None:
        """`group_send` each (group, message), one pipeline per Redis shard."""
        # channels-redis 4.x internals: the per-loop layer names the group's Redis channel and picks
        # its shard; tests/streaming/test_layers.py checks that ordinary receivers get the messages.
        loop_layer = self._get_layer()
        by_shard: dict[Any, list[tuple[str, bytes]]] = defaultdict(list)
        for group, message in messages:
            name = loop_layer._get_group_channel_name(group)
            by_shard[loop_layer._get_shard(name)].append((name, self.serialize(message)))
        for shard, items in by_shard.items():
            async with shard._lock:
                shard._ensure_redis()
                pipe = shard._redis.pipeline(transaction=False)
                for name, data in items:
                    pipe.publish(name, data)
                await pipe.execute()


async def group_send_many(layer: BaseChannelLayer, messages: list[GroupMessage]) -> None:
    """Pipelined when the layer can (Redis), else one `group_send` after another (in-memory layer)."""
    if isinstance(layer, PipelinedPubSubChannelLayer):
        await layer.group_send_many(messages)
        return
    for group, message in messages:
        await layer.group_send(group, message)
