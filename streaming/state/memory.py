"""In-process streaming state for single-process dev mode (no Redis)."""

import time
from collections import defaultdict
from typing import Any

from .base import BARS_KEPT, Bar, LeaseKind, StreamState, Watch


class MemoryStreamState(StreamState):
    def __init__(self) -> None:
        self._leases: dict[tuple[LeaseKind, str], set[str]] = defaultdict(set)
        self._watches: dict[str, set[Watch]] = defaultdict(set)
        self._version = 0
        self._last: dict[int, dict[str, bytes]] = defaultdict(dict)
        self._history: dict[int, dict[str, int]] = defaultdict(dict)
        self._leader: tuple[str, float] | None = None
        self._feed_status: tuple[dict[str, Any], float] | None = None
        self._bars: dict[str, list[Bar]] = {}

    async def lease_acquire(self, kind: LeaseKind, schema: str, lease_id: str, limit: int) -> bool:
        held = self._leases[kind, schema]
        if len(held) >= limit:
            return False
        held.add(lease_id)
        return True

    async def lease_release(self, kind: LeaseKind, schema: str, lease_id: str) -> None:
        self._leases[kind, schema].discard(lease_id)

    async def lease_refresh(self, leases: list[tuple[LeaseKind, str, str]]) -> None:
        return None

    async def lease_count(self, kind: LeaseKind, schema: str) -> int:
        return len(self._leases[kind, schema])

    async def lease_ids(self, kind: LeaseKind, schema: str) -> list[str]:
        return self.lease_ids_now(kind, schema)

    def lease_ids_now(self, kind: LeaseKind, schema: str) -> list[str]:
        return list(self._leases.get((kind, schema), ()))

    async def watches_update(self, process_id: str, added: set[Watch], removed: set[Watch], full: bool) -> None:
        watches = self._watches[process_id]
        if full:
            watches.clear()
        watches.difference_update(removed)
        watches.update(added)
        self._version += 1

    async def watches_touch(self, process_id: str) -> bool:
        return bool(self._watches.get(process_id))

    async def watches_version(self) -> int:
        return self._version

    async def watch_keys(self) -> set[str]:
        return {watch.key() for watches in self._watches.values() for watch in watches}

    async def last_quotes_store(self, delay_minutes: int, encoded: dict[str, bytes]) -> None:
        self._last[delay_minutes].update(encoded)

    async def last_quotes(self, delay_minutes: int, symbols: list[str]) -> dict[str, bytes]:
        cache = self._last[delay_minutes]
        return {s: cache[s] for s in symbols if s in cache}

    async def delay_history_started(self, delay_minutes: int, symbols: dict[str, int] | None = None) -> dict[str, int]:
        started = self._history[delay_minutes]
        for symbol, ts in (symbols or {}).items():
            started.setdefault(symbol, ts)
        return dict(started)

    async def delay_history_reset(self) -> None:
        self._history.clear()

    async def bars_merge(self, bars: dict[str, list[Bar]]) -> None:
        for symbol, added in bars.items():
            stored = self._bars.setdefault(symbol, [])
            for bar in added:
                if stored and stored[-1].minute == bar.minute:
                    stored[-1] = bar
                elif not stored or stored[-1].minute < bar.minute:
                    stored.append(bar)
            del stored[:-BARS_KEPT]

    async def bars_replace(self, bars: dict[str, list[Bar]]) -> None:
        for symbol, added in bars.items():
            self._bars[symbol] = list(added[-BARS_KEPT:])

    def bars_now(self, symbols: list[str]) -> dict[str, list[Bar]]:
        return {s: list(self._bars[s]) for s in symbols if self._bars.get(s)}

    async def feed_status_store(self, status: dict[str, Any], ttl_ms: int) -> None:
        self._feed_status = (dict(status), time.monotonic() + ttl_ms / 1000)

    async def feed_status(self) -> dict[str, Any] | None:
        return self.feed_status_now()

    def feed_status_now(self) -> dict[str, Any] | None:
        stored = self._feed_status
        return dict(stored[0]) if stored is not None and stored[1] > time.monotonic() else None

    async def leader_acquire(self, holder: str, ttl_ms: int) -> bool:
        now = time.monotonic()
        if self._leader is None or self._leader[0] == holder or self._leader[1] < now:
            self._leader = (holder, now + ttl_ms / 1000)
            return True
        return False

    async def leader_release(self, holder: str) -> None:
        if self._leader and self._leader[0] == holder:
            self._leader = None
