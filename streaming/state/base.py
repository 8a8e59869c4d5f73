"""What the streaming state offers, whatever stores it."""

import abc
import enum
from typing import Any, NamedTuple

MINUTE_MS = 60_000
BARS_KEPT = 390  # minute bars kept per symbol: a trading day (6.5 hours)


class LeaseKind(enum.StrEnum):
    STREAM = "streams"  # signed-in connections, against max_streams
    WIDGET = "widgets"  # widget viewers, against max_widget_viewers


class Watch(NamedTuple):
    """One organisation following one symbol at one delay (0 = realtime)."""

    schema: str
    delay_minutes: int
    symbol: str

    def key(self) -> str:
        return f"{self.schema}|{self.delay_minutes}|{self.symbol}"

    @classmethod
    def from_key(cls, key: str) -> "Watch":
        schema, delay, symbol = key.split("|")
        return cls(schema, int(delay), symbol)


class Bar(NamedTuple):
    """One symbol's minute: `minute` is its start (UTC epoch ms), volume what traded within it."""

    minute: int
    open: float
    high: float
    low: float
    close: float
    volume: int


class StreamState(abc.ABC):
    # -- stream leases: a counter per organisation that expires with its process ---------------
    @abc.abstractmethod
    async def lease_acquire(self, kind: LeaseKind, schema: str, lease_id: str, limit: int) -> bool:
        """Take one of `limit` places for this organisation; False when all are taken."""

    async def lease_acquire_reading(
        self, kind: LeaseKind, schema: str, lease_id: str, limit: int, delay_minutes: int, symbols: list[str]
    ) -> dict[str, bytes] | None:
        """`lease_acquire`, then, when a place was taken, `last_quotes(delay_minutes, symbols)` read after
        it; None when no place was free. One round trip where the store can (a connect's snapshot)."""
        if not await self.lease_acquire(kind, schema, lease_id, limit):
            return None
        return await self.last_quotes(delay_minutes, symbols)

    @abc.abstractmethod
    async def lease_release(self, kind: LeaseKind, schema: str, lease_id: str) -> None: ...

    @abc.abstractmethod
    async def lease_refresh(self, leases: list[tuple[LeaseKind, str, str]]) -> None:
        """Keep this process's leases alive (called periodically)."""

    @abc.abstractmethod
    async def lease_count(self, kind: LeaseKind, schema: str) -> int: ...

    @abc.abstractmethod
    async def lease_ids(self, kind: LeaseKind, schema: str) -> list[str]:
        """The ids of the organisation's live leases (a usage page counts them by prefix)."""

    # -- the watch registry: which organisation follows which symbol, per process ---------------
    @abc.abstractmethod
    async def watches_update(self, process_id: str, added: set[Watch], removed: set[Watch], full: bool) -> None:
        """Record this process's changes (or its full set when `full`) and bump the version."""

    @abc.abstractmethod
    async def watches_touch(self, process_id: str) -> bool:
        """Keep this process's watches alive; False when they are gone (expired, Redis restarted)."""

    @abc.abstractmethod
    async def watches_version(self) -> int:
        """A number that changes whenever any process's watches change (cheap to poll)."""

    @abc.abstractmethod
    async def watch_keys(self) -> set[str]:
        """Every live process's watches as `Watch.key()` strings: cheap to compare with an earlier read
        (the feed parses only what changed)."""

    # -- last-quote cache (one per delay) -------------------------------------------------------
    @abc.abstractmethod
    async def last_quotes_store(self, delay_minutes: int, encoded: dict[str, bytes]) -> None: ...

    @abc.abstractmethod
    async def last_quotes(self, delay_minutes: int, symbols: list[str]) -> dict[str, bytes]: ...

    @abc.abstractmethod
    async def delay_history_started(self, delay_minutes: int, symbols: dict[str, int] | None = None) -> dict[str, int]:
        """Record (when given) and return when the feed's history of each symbol began (epoch ms)."""

    @abc.abstractmethod
    async def delay_history_reset(self) -> None:
        """Forget every history start (a new feed leader starts its delay buffers empty)."""

    # -- minute bars: the last BARS_KEPT per symbol (realtime; delayed plans see their past) --------
    @abc.abstractmethod
    async def bars_merge(self, bars: dict[str, list[Bar]]) -> None:
        """Add bars per symbol, oldest first: one of the symbol's last stored minute replaces it, a newer
        one is appended, an older one is ignored; each symbol keeps its last BARS_KEPT."""

    @abc.abstractmethod
    async def bars_replace(self, bars: dict[str, list[Bar]]) -> None:
        """Set each symbol's bars to these (oldest first; the last BARS_KEPT)."""

    # -- the feed leader's status (provider, connection, history), for connections and staff -------
    @abc.abstractmethod
    async def feed_status_store(self, status: dict[str, Any], ttl_ms: int) -> None:
        """The leader's status, kept `ttl_ms` (it is rewritten every second while a leader runs)."""

    @abc.abstractmethod
    async def feed_status(self) -> dict[str, Any] | None:
        """The last status a leader stored, or None when none has for `ttl_ms` (no leader)."""

    # -- the feed leader lock ---------------------------------------------------------------------
    @abc.abstractmethod
    async def leader_acquire(self, holder: str, ttl_ms: int) -> bool:
        """Take or renew the feed leadership; False when another holder has it."""

    @abc.abstractmethod
    async def leader_release(self, holder: str) -> None: ...
