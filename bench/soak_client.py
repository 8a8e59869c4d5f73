"""The soak's load client: a steady population of websockets, churned, plus one abusive address.

    python -m bench.soak_client   (driven by bench.soak over stdin/stdout, bench.wire)

Each connection has a slot: its organisation's host and session (or a widget, whose viewer asks the
token endpoint for a token first, as the embed script does), its symbols or watchlist, and the
loopback address it connects from. A slot whose connection ends is opened again, so the population
stays at its size. Runs on uvloop with the fast reader of bench.wsclient.

Commands:
- `populate {"port", "slots": [slot], "concurrency", "connect_timeout", "seed"}`: opens every slot →
  {"opened", "refused": {reason: count}, "seconds"}
- `churn {"per_second", "quiet_seconds"}`: from now on, every second, `per_second` connections end (half
  with a close frame 1000, half abruptly: alternately a reset and a socket closed without a close frame)
  and their slots open again; connections the server closed are counted and reopened; every open
  connection must get a quote at least every `quiet_seconds` → {}
- `stats` → every count so far (`Churn.stats`)
- `abuse {"port", "source", "connect": slot, "attempts", "concurrency", "token_requests"}`: from one address,
  `attempts` connects as fast as `concurrency` allows (each accepted one closed at once), then
  `token_requests` to the slot's token endpoint → {"connects": {outcome: count}, "tokens": {outcome: count}}
- `settle`: the churn stops, the connects under way finish → stats
- `close_all`: every connection closed with 1000 → {"closed"}
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from bench import httpload, wire
from bench.wsclient import Connection, Tally, Target, Window, connect

FIRST_FRAME = "snapshot"
CLOSE_WAIT_SECONDS = 2.0  # for a refused connect's close frame, after its error message


@dataclass(frozen=True)
class Slot:
    """Where one connection of the population goes, and as whom."""

    kind: str  # "symbols", "watchlist" (a member's stream) or "viewer" (a widget's)
    host: str
    path: str  # a viewer's ends with `token=`: the token it is given is appended
    source: str  # the loopback address it connects from
    cookie: str = ""
    origin: str = ""
    token_path: str = ""  # a viewer's: POST here (with its Origin) for a token before each connect

    @classmethod
    def of(cls, spec: dict[str, Any]) -> Slot:
        return cls(**spec)


class Churn:
    """The population: one connection per slot, reopened when it ends; everything counted."""

    def __init__(self) -> None:
        self.port = 0
        self.timeout = 30.0
        self.slots: list[Slot] = []
        self.live: dict[int, Connection] = {}
        self.pending: set[asyncio.Task[None]] = set()
        self.rng = random.Random(1)
        self.tally, self.window = Tally(), Window(0, 2**62, open=True)  # counts every quote
        self.counts: Counter[str] = Counter()  # opened, closed_clean, closed_reset, closed_dropped, reopened
        self.refused: Counter[str] = Counter()  # the population's refused connects, by reason
        self.server_closed: Counter[str] = Counter()  # open connections ended by the server, by close code
        self.messages: Counter[str] = Counter()  # messages other than quotes once open, by type
        self.tokens: Counter[str] = Counter()  # the viewers' token requests, by outcome
        self.starving_max = 0  # most connections at once without a quote for `quiet_seconds`
        self.starving_now = 0
        self.quiet_ms = 30_000
        self.loop_task: asyncio.Task[None] | None = None

    # -- commands --------------------------------------------------------------------------------
    async def populate(self, command: wire.Message) -> wire.Message:
        self.port, self.timeout = int(command["port"]), float(command["connect_timeout"])
        self.rng = random.Random(int(command["seed"]))
        first = len(self.slots)
        self.slots += [Slot.of(spec) for spec in command["slots"]]
        gate = asyncio.Semaphore(int(command["concurrency"]))
        refused_before = sum(self.refused.values())

        async def one(index: int) -> None:
            async with gate:
                await self.open_slot(index)

        started = time.monotonic()
        await asyncio.gather(*(one(index) for index in range(first, len(self.slots))))
        refused = {reason: count for reason, count in self.refused.items() if count}
        return {"opened": len(self.live), "refused": refused, "refused_count": sum(self.refused.values()) -
                refused_before, "seconds": round(time.monotonic() - started, 2)}  # fmt: skip

    async def churn(self, command: wire.Message) -> wire.Message:
        await self.loop_stop()
        self.quiet_ms = round(1000 * float(command["quiet_seconds"]))
        per_second = float(command["per_second"])
        if per_second > 0:
            self.loop_task = asyncio.create_task(self.loop(per_second))
        return {}

    async def stats(self, command: wire.Message) -> wire.Message:
        return self.summary()

    async def settle(self, command: wire.Message) -> wire.Message:
        await self.loop_stop()
        while self.pending:
            await asyncio.gather(*self.pending)
        self.scan(reopen=False)
        return self.summary()

    async def close_all(self, command: wire.Message) -> wire.Message:
        await self.loop_stop()
        closing, self.live = self.live, {}
        for connection in closing.values():
            connection.close()
        await asyncio.sleep(0.2)  # let the close frames go out
        return {"closed": len(closing)}

    async def abuse(self, command: wire.Message) -> wire.Message:
        """One address hammering the connect step, then the token endpoint."""
        slot = Slot.of(command["connect"])
        target = Target(int(command["port"]), slot.host, slot.path, slot.cookie, 0, slot.origin, slot.source)
        gate = asyncio.Semaphore(int(command["concurrency"]))
        connects: Counter[str] = Counter()
        tally, window = Tally(), Window()  # apart from the population's counts

        async def one() -> None:
            async with gate:
                connection = await connect(target, tally, window, FIRST_FRAME, self.timeout)
                if connection.refusal is None:
                    connects["accepted"] += 1
                    connection.close()
                else:
                    connects[await refusal_of(connection)] += 1

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(int(command["attempts"]))))
        connect_seconds = time.monotonic() - started
        token_slot = Slot.of(command["token"])
        request = httpload.Request(int(command["port"]), "POST", token_slot.host, token_slot.token_path,
                                   {"Origin": token_slot.origin}, token_slot.source)  # fmt: skip
        outcome, token_seconds = await httpload.requests_run(
            request, count=int(command["token_requests"]), concurrency=int(command["concurrency"]),
            request_seconds=self.timeout,
        )  # fmt: skip
        tokens = {"200": len(outcome.latencies_ms), **outcome.errors}
        return {"connects": dict(connects), "connect_seconds": round(connect_seconds, 2), "tokens": tokens,
                "token_seconds": round(token_seconds, 2)}  # fmt: skip

    # -- the population ----------------------------------------------------------------------------
    async def open_slot(self, index: int) -> None:
        slot = self.slots[index]
        path = slot.path
        if slot.token_path:
            token = await self.token(slot)
            if token is None:
                return
            path += quote(token, safe="")
        target = Target(self.port, slot.host, path, slot.cookie, 0, slot.origin, slot.source)
        connection = await connect(target, self.tally, self.window, FIRST_FRAME, self.timeout)
        if connection.refusal is not None:
            self.refused[await refusal_of(connection)] += 1
            return
        connection.on_message = self.message
        self.live[index] = connection
        self.counts["opened"] += 1

    async def token(self, slot: Slot) -> str | None:
        """A viewer's token from the endpoint, as the embed script gets one (None: refused, counted)."""
        request = httpload.Request(self.port, "POST", slot.host, slot.token_path, {"Origin": slot.origin}, slot.source)
        outcome, _ = await httpload.requests_run(request, count=1, concurrency=1, request_seconds=self.timeout)
        if not outcome.bodies:
            kind = next(iter(outcome.errors), "no answer")
            self.tokens[kind] += 1
            self.refused[f"token {kind}"] += 1
            return None
        self.tokens["200"] += 1
        return str(orjson.loads(outcome.bodies[0])["token"])

    def message(self, message: dict[str, Any]) -> None:
        self.messages[str(message.get("type"))] += 1

    def reopen(self, index: int) -> None:
        task = asyncio.create_task(self.open_slot(index))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        self.counts["reopened"] += 1

    async def loop(self, per_second: float) -> None:
        """Once a second: end `per_second` connections (carrying fractions over), reopen their slots."""
        carry, turn = 0.0, 0
        next_at = time.monotonic()
        while True:
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            self.scan(reopen=True)
            carry += per_second
            count = min(int(carry), len(self.live))
            carry -= int(carry)
            for index in self.rng.sample(sorted(self.live), count):
                connection = self.live.pop(index)
                if turn % 2 == 0:  # every other one clean; of the others, every other one a reset
                    connection.close(1000)
                    self.counts["closed_clean"] += 1
                else:
                    reset = turn % 4 == 1
                    connection.abort(reset=reset)
                    self.counts["closed_reset" if reset else "closed_dropped"] += 1
                turn += 1
                self.reopen(index)

    async def loop_stop(self) -> None:
        if self.loop_task is not None:
            self.loop_task.cancel()
            await asyncio.gather(self.loop_task, return_exceptions=True)
            self.loop_task = None

    def scan(self, *, reopen: bool) -> None:
        """Count (and reopen) the connections the server ended; count the ones that have gone quiet."""
        now_ms = time.time_ns() // 1_000_000
        starving = 0
        for index, connection in list(self.live.items()):
            if not connection.open:
                del self.live[index]
                self.server_closed[str(connection.close_code)] += 1
                if reopen:
                    self.reopen(index)
            elif now_ms - connection.last_quote_ms > self.quiet_ms:
                starving += 1
        self.starving_now = starving
        self.starving_max = max(self.starving_max, starving)

    def summary(self) -> dict[str, Any]:
        kinds = Counter(self.slots[index].kind for index in self.live)
        return {
            "open": len(self.live), "open_by_kind": dict(kinds), "pending": len(self.pending), **self.counts,
            "refused": dict(self.refused), "server_closed": dict(self.server_closed), "messages": dict(self.messages),
            "tokens": dict(self.tokens), "quotes": self.tally.quotes, "quote_frames": self.tally.frames,
            "starving_now": self.starving_now, "starving_max": self.starving_max,
        }  # fmt: skip


async def refusal_of(connection: Connection) -> str:
    """`<close code> <reason>` of a refused connect, once its close frame is in (or the wait is over)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(connection.lost), CLOSE_WAIT_SECONDS)
    return f"{connection.close_code} {connection.refusal}"


async def main() -> None:
    churn = Churn()
    await wire.serve({"populate": churn.populate, "churn": churn.churn, "stats": churn.stats, "abuse": churn.abuse,
                      "settle": churn.settle, "close_all": churn.close_all})  # fmt: skip


if __name__ == "__main__":
    wire.run(main)
