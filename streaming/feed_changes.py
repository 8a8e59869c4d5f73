"""What the feed leader tells open connections between snapshots: the market opened or closed, and
which watched symbols the data source stopped (or started again) serving.

Each change is one control-group message per organisation concerned (every watching organisation
for the market; those watching a changed symbol for unserved ones), pipelined in one Redis round
trip per shard: twice a trading day for the market, never a message per connection. Each process's
hub room hands it to the organisation's connections there.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .groups import control_group
from .layers import GroupMessage

MARKET_CHANGED = "market.changed"
UNSERVED_CHANGED = "unserved.changed"


@dataclass
class FeedChanges:
    """The market state and unserved symbols connections were last told (in a snapshot or a message),
    and the messages that bring them up to date when the feed's status moves on."""

    market: dict[str, Any] | None = None  # None: never said, which a snapshot shows as open ("Live")
    unserved: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> "FeedChanges":
        """Start from the status the previous leader stored: a change during a failover is still told."""
        status = status or {}
        market = status.get("market")
        return cls(market=dict(market) if market else None, unserved=dict(status.get("unserved") or {}))

    @property
    def market_open(self) -> bool:
        return self.market is None or bool(self.market["open"])

    def messages(self, status: Mapping[str, Any], watchers: Mapping[str, Iterable[str]]) -> list[GroupMessage]:
        """The messages for what changed since the last call (none when nothing did).

        `status` is the feed status just stored (its `market` and `unserved`); `watchers` maps each
        watched symbol to the schemas of the organisations that watch it.
        """
        return self._market(status.get("market"), watchers) + self._unserved(status.get("unserved") or {}, watchers)

    def catch_up(self, schemas: set[str], watchers: Mapping[str, Iterable[str]]) -> list[GroupMessage]:
        """For organisations that just started watching: what a snapshot read moments before a change
        (or from a web process's status cached for a second) may have missed, when it is not the default."""
        market = [] if self.market_open else [(control_group(s), self._market_message()) for s in sorted(schemas)]
        return market + self._unserved_messages({s: set() for s in schemas}, watchers)

    def _market(self, market: Mapping[str, Any] | None, watchers: Mapping[str, Iterable[str]]) -> list[GroupMessage]:
        # An unknown market (no calendar read yet, or one that failed) changes nothing on screen.
        if not market or bool(market["open"]) == self.market_open:
            return []
        self.market = dict(market)
        schemas = sorted({schema for schemas in watchers.values() for schema in schemas})
        return [(control_group(schema), self._market_message()) for schema in schemas]

    def _market_message(self) -> dict[str, Any]:
        return {"type": MARKET_CHANGED, "market": self.market}

    def _unserved(self, unserved: Mapping[str, str], watchers: Mapping[str, Iterable[str]]) -> list[GroupMessage]:
        if unserved == self.unserved:
            return []
        changed = {s for s in unserved.keys() | self.unserved.keys() if unserved.get(s) != self.unserved.get(s)}
        self.unserved = dict(unserved)
        changed_by_schema: dict[str, set[str]] = defaultdict(set)
        for symbol in changed:
            for schema in watchers.get(symbol, ()):
                changed_by_schema[schema].add(symbol)
        return self._unserved_messages(changed_by_schema, watchers)

    def _unserved_messages(
        self, changed_by_schema: Mapping[str, set[str]], watchers: Mapping[str, Iterable[str]]
    ) -> list[GroupMessage]:
        """To each organisation with changed symbols (all its unserved ones when none are given: a
        catch-up), the unserved symbols it watches: all of them, so that a connection can tell its
        client the full list for its own symbols; not the source's whole list."""
        unserved_by_schema: dict[str, dict[str, str]] = defaultdict(dict)
        for symbol, reason in self.unserved.items():
            for schema in watchers.get(symbol, ()):
                if schema in changed_by_schema:
                    unserved_by_schema[schema][symbol] = reason
        messages = []
        for schema, changed in sorted(changed_by_schema.items()):
            symbols = changed or set(unserved_by_schema[schema])
            if symbols:
                message = {"type": UNSERVED_CHANGED, "symbols": sorted(symbols), "unserved": unserved_by_schema[schema]}
                messages.append((control_group(schema), message))
        return messages


def unserved_items(symbols: Iterable[str], unserved: Mapping[str, str]) -> list[dict[str, str]]:
    """SPEC's unserved list for these symbols (the snapshot's field, and the `unserved` message's)."""
    return [{"symbol": s, "reason": unserved[s]} for s in symbols if s in unserved]
