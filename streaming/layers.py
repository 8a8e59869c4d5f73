"""The channel layer: channels-redis' pub/sub layer, plus one pipelined `group_send_many`, and
messages already read taken without a timer each.

The feed sends one message per watching organisation per batch. Sent one by one, each is a Redis
round trip under the shard's lock (50 organisations: 50 round trips per batch); pipelined, a whole
batch is one round trip per shard. The wire format and channel names stay the layer's own, so
subscribers receive these messages through the ordinary `receive`.

On the receiving side, channels-redis reads each message with a 0.1 s timeout: an asyncio timer armed
and cancelled per message, ~5 % of a busy web process. A pipelined batch arrives in one or a few
socket reads, so most of its messages are parsed already when they are asked for; those are taken
without a timer (`BufferedPubSub`). A message not read yet is waited for with the timeout, as before,
so an idle connection still sends its health checks.
"""

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from channels.layers import BaseChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from redis.asyncio.client import PubSub

GroupMessage = tuple[str, dict[str, Any]]


def _reply_buffered(pubsub: PubSub) -> bool:
    """Bytes of a reply already read from the socket (hiredis' reader holds them); False when unknown."""
    reader = getattr(getattr(pubsub.connection, "_parser", None), "_reader", None)
    has_data = getattr(reader, "has_data", None)
    return bool(has_data is not None and has_data())


class BufferedPubSub(PubSub):
    async def get_message(
        self,
        ignore_subscribe_messages: bool = False,
        timeout: float | None = 0.0,  # noqa: ASYNC109 (redis-py's signature)
    ) -> Any:
        """As redis-py's, but a message whose bytes are already read is taken without a timer."""
        if timeout and self.connection is not None and _reply_buffered(self):
            timeout = None  # no timer: the rest of a reply whose start is here is on its way
        # redis-py takes None (wait without a timer); its stubs say float.
        return await super().get_message(ignore_subscribe_messages, timeout)  # type: ignore[arg-type]


class _Shard(RedisSingleShardConnection):
    def _ensure_redis(self) -> None:
        if self._redis is None:
            super()._ensure_redis()
            redis: Any = self._redis
            self._pubsub = BufferedPubSub(redis.connection_pool)


class PipelinedPubSubChannelLayer(RedisPubSubChannelLayer):
    def _get_layer(self) -> RedisPubSubLoopLayer:
        layer = self._layers.get(asyncio.get_running_loop())
        if layer is None:
            # channels-redis 4.x internals: a new loop's layer gets shards that read with BufferedPubSub
            # (made before any connection: the layer opens them on first use).
            layer = super()._get_layer()
            layer._shards = [_Shard(shard.host, layer) for shard in layer._shards]
        return layer

    async def receive(self, channel: str) -> Any:
        # Defined here, not found through channels-redis' __getattr__ (a functools.partial per message).
        return await self._get_layer().receive(channel)

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
