"""ConflatingSender (latest quote per symbol, messages first, slow readers closed) and quote encoding."""

import asyncio
import dataclasses
import gc
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from streaming.metrics import StreamCounts
from streaming.quotes import Quote, quotes_frame, update_frame, update_payload, websocket_text_frame
from streaming.sender import ConflatingSender, SendClock

SPEC_QUOTE_FIELDS = {"symbol", "price", "bid", "ask", "volume", "change", "change_pct", "ts"}
SYMBOLS = [f"S{i:02d}" for i in range(20)]


def encoded(symbol: str, n: int) -> bytes:
    return orjson.dumps({"symbol": symbol, "n": n})


class Socket:
    """A fake websocket: records every frame; `gate` blocks sends while it is clear."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.started: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.slow_calls = 0
        self.changed = asyncio.Condition()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def send_text(self, text: str) -> None:
        self.started.append(text)
        await self._notify()
        await self.gate.wait()
        self.frames.append(text)
        await self._notify()

    async def on_slow(self) -> None:
        self.slow_calls += 1
        await self._notify()

    def decoded(self) -> list[dict[str, Any]]:
        return [orjson.loads(f) for f in self.frames]


async def until(socket: Socket, condition: Callable[[], bool], within: float = 2.0) -> None:
    """Wait until the fake socket's state satisfies `condition`."""
    async with asyncio.timeout(within), socket.changed:
        await socket.changed.wait_for(condition)


@pytest.fixture
async def socket() -> Socket:
    return Socket()


@pytest.fixture
async def sender(socket: Socket) -> AsyncIterator[ConflatingSender]:
    running = ConflatingSender(socket.send_text, socket.on_slow, slow_after=5.0, clock=SendClock(0))
    yield running
    socket.gate.set()
    await running.stop()


async def test_a_blocked_send_conflates_to_the_latest_quote_per_symbol(
    sender: ConflatingSender, socket: Socket
) -> None:
    socket.gate.clear()
    sender.start()
    sender.offer("FIRST", encoded("FIRST", 0))
    await until(socket, lambda: len(socket.started) == 1)  # the sender is now stuck in send_text

    for n in range(10_000):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        sender.offer(symbol, encoded(symbol, n))
        assert sender.pending_quotes <= len(SYMBOLS)
    assert sender.pending_quotes == len(SYMBOLS)

    socket.gate.set()
    await until(socket, lambda: len(socket.frames) == 2)
    first, second = socket.decoded()
    assert first == {"type": "quotes", "quotes": [{"symbol": "FIRST", "n": 0}]}
    assert second["type"] == "quotes"
    latest = {symbol: max(n for n in range(10_000) if SYMBOLS[n % len(SYMBOLS)] == symbol) for symbol in SYMBOLS}
    assert {q["symbol"]: q["n"] for q in second["quotes"]} == latest
    assert len(second["quotes"]) == len(SYMBOLS)
    assert sender.pending_quotes == 0


async def test_messages_go_out_before_pending_quotes(sender: ConflatingSender, socket: Socket) -> None:
    sender.offer("AAPL", encoded("AAPL", 1))
    sender.message('{"type":"pong"}')
    sender.message('{"type":"subscribed","symbols":["AAPL"],"rejected":[]}')
    sender.start()
    await until(socket, lambda: len(socket.frames) == 3)
    assert [frame["type"] for frame in socket.decoded()] == ["pong", "subscribed", "quotes"]


async def test_messages_queued_during_a_blocked_send_overtake_quotes_offered_earlier(
    sender: ConflatingSender, socket: Socket
) -> None:
    socket.gate.clear()
    sender.start()
    sender.message('{"type":"first"}')
    await until(socket, lambda: len(socket.started) == 1)
    sender.offer("MSFT", encoded("MSFT", 1))
    sender.message('{"type":"second"}')
    socket.gate.set()
    await until(socket, lambda: len(socket.frames) == 3)
    assert [frame["type"] for frame in socket.decoded()] == ["first", "second", "quotes"]


async def test_a_send_blocked_past_slow_after_reports_slow_once_and_stops() -> None:
    socket = Socket()
    socket.gate.clear()
    sender = ConflatingSender(socket.send_text, socket.on_slow, slow_after=0.2, clock=SendClock(0))
    sender.start()
    sender.offer("AAPL", encoded("AAPL", 1))
    await until(socket, lambda: socket.slow_calls == 1, within=2)
    assert socket.frames == []

    # The sender has stopped: later offers and messages send nothing and report nothing more.
    sender.offer("AAPL", encoded("AAPL", 2))
    sender.message('{"type":"pong"}')
    socket.gate.set()
    await asyncio.sleep(0.5)
    assert socket.slow_calls == 1
    assert len(socket.started) == 1
    assert socket.frames == []
    await sender.stop()


async def test_a_send_faster_than_slow_after_is_not_slow() -> None:
    socket = Socket()
    socket.gate.clear()
    sender = ConflatingSender(socket.send_text, socket.on_slow, slow_after=2.0, clock=SendClock(0))
    sender.start()
    sender.offer("AAPL", encoded("AAPL", 1))
    await asyncio.sleep(0.1)
    socket.gate.set()
    await until(socket, lambda: len(socket.frames) == 1)
    sender.offer("AAPL", encoded("AAPL", 2))
    await until(socket, lambda: len(socket.frames) == 2)
    assert socket.slow_calls == 0
    await sender.stop()


async def test_drop_forgets_unsent_quotes_of_those_symbols(sender: ConflatingSender, socket: Socket) -> None:
    for symbol in ("AAPL", "MSFT", "KO"):
        sender.offer(symbol, encoded(symbol, 1))
    sender.drop({"MSFT", "KO", "NOT_PENDING"})
    assert sender.pending_quotes == 1
    sender.start()
    await until(socket, lambda: len(socket.frames) == 1)
    await asyncio.sleep(0.05)
    assert socket.decoded() == [{"type": "quotes", "quotes": [{"symbol": "AAPL", "n": 1}]}]


async def test_dropping_everything_sends_no_empty_frame(sender: ConflatingSender, socket: Socket) -> None:
    sender.offer("AAPL", encoded("AAPL", 1))
    sender.drop({"AAPL"})
    sender.start()
    await asyncio.sleep(0.1)
    assert socket.frames == []
    assert sender.pending_quotes == 0


async def test_stop_cancels_a_blocked_send(socket: Socket) -> None:
    socket.gate.clear()
    sender = ConflatingSender(socket.send_text, socket.on_slow, slow_after=5.0, clock=SendClock(0))
    sender.start()
    sender.offer("AAPL", encoded("AAPL", 1))
    await until(socket, lambda: len(socket.started) == 1)
    async with asyncio.timeout(1):
        await sender.stop()
    assert socket.frames == []
    assert socket.slow_calls == 0


async def test_quotes_arriving_before_the_next_tick_share_one_frame(socket: Socket) -> None:
    clock = SendClock(0.05)
    senders = [ConflatingSender(socket.send_text, socket.on_slow, slow_after=5.0, clock=clock) for _ in range(2)]
    for sender in senders:
        sender.start()
    for n, symbol in enumerate(SYMBOLS[:5]):
        for sender in senders:
            sender.offer(symbol, encoded(symbol, n))
        await asyncio.sleep(0.005)  # spread over 25 ms: all within one 50 ms tick
    await until(socket, lambda: len(socket.frames) == 2)
    await asyncio.sleep(0.1)
    assert len(socket.frames) == 2, "one frame per connection per tick"
    for frame in socket.decoded():
        assert [q["symbol"] for q in frame["quotes"]] == SYMBOLS[:5]
    for sender in senders:
        await sender.stop()


async def test_without_an_interval_the_tick_comes_once_what_is_ready_has_run(socket: Socket) -> None:
    """The web processes' clock (the feed's window spaces the messages): quotes offered by callbacks
    ready at the same time (rooms fanning out the messages at hand) share one frame per connection; a
    quote offered after that tick leaves in a frame of its own."""
    clock = SendClock()
    sender = ConflatingSender(socket.send_text, socket.on_slow, slow_after=5.0, clock=clock)
    sender.start()
    loop = asyncio.get_running_loop()
    for n, symbol in enumerate(SYMBOLS[:3]):
        loop.call_soon(sender.offer, symbol, encoded(symbol, n))
    await until(socket, lambda: len(socket.frames) == 1)
    sender.offer("LATE", encoded("LATE", 9))
    await until(socket, lambda: len(socket.frames) == 2)
    assert [[q["symbol"] for q in frame["quotes"]] for frame in socket.decoded()] == [SYMBOLS[:3], ["LATE"]]
    await sender.stop()


async def test_a_cancelled_sender_does_not_stop_the_clock_for_the_others(socket: Socket) -> None:
    clock = SendClock(0.05)
    leaving, staying = (ConflatingSender(socket.send_text, socket.on_slow, slow_after=5.0, clock=clock) for _ in "ab")
    for sender in (leaving, staying):
        sender.start()
        sender.offer("AAPL", encoded("AAPL", 1))
    await asyncio.sleep(0.01)  # both now wait for the tick
    await leaving.stop()
    await until(socket, lambda: len(socket.frames) == 1)
    assert socket.decoded() == [{"type": "quotes", "quotes": [{"symbol": "AAPL", "n": 1}]}]
    await staying.stop()


# -- quotes.py -------------------------------------------------------------------------------------

QUOTE = Quote(symbol="AAPL", price=190.12, bid=190.1, ask=190.14, volume=1_234_567, change=1.5, change_pct=0.8, ts=1)


def test_update_frame_is_the_quotes_frame() -> None:
    encoded = [QUOTE.encode(), dataclasses.replace(QUOTE, symbol="MSFT").encode()]
    assert update_frame(encoded) == quotes_frame("quotes", encoded)
    assert orjson.loads(update_frame(encoded))["quotes"][1]["symbol"] == "MSFT"


def test_quote_encode_has_exactly_the_spec_fields() -> None:
    decoded = orjson.loads(QUOTE.encode())
    assert set(decoded) == SPEC_QUOTE_FIELDS
    assert {f.name for f in dataclasses.fields(Quote)} == SPEC_QUOTE_FIELDS
    assert decoded == {
        "symbol": "AAPL",
        "price": 190.12,
        "bid": 190.1,
        "ask": 190.14,
        "volume": 1_234_567,
        "change": 1.5,
        "change_pct": 0.8,
        "ts": 1,
    }
    assert isinstance(decoded["volume"], int)
    assert isinstance(decoded["ts"], int)


def test_quotes_frame_is_valid_json_with_extra_fields_and_the_quotes_array() -> None:
    other = dataclasses.replace(QUOTE, symbol="MSFT", price=410.0)
    frame = quotes_frame(
        "snapshot",
        [QUOTE.encode(), other.encode()],
        delayed=True,
        delay_minutes=15,
        limits={"max_symbols": 50, "symbols": 2},
    )
    decoded = orjson.loads(frame)
    assert isinstance(frame, str)
    assert decoded == {
        "type": "snapshot",
        "delayed": True,
        "delay_minutes": 15,
        "limits": {"max_symbols": 50, "symbols": 2},
        "quotes": [orjson.loads(QUOTE.encode()), orjson.loads(other.encode())],
    }
    assert next(iter(decoded)) == "type"


@pytest.mark.parametrize("quotes", [[], [b'{"symbol":"A"}']])
def test_quotes_frame_without_extras(quotes: list[bytes]) -> None:
    decoded = orjson.loads(quotes_frame("quotes", quotes))
    assert decoded == {"type": "quotes", "quotes": [orjson.loads(q) for q in quotes]}


async def test_a_throttled_symbol_leaves_at_most_n_times_a_second_and_always_latest(
    sender: ConflatingSender, socket: Socket
) -> None:
    sender.throttle(2)  # 2 a second per symbol
    sender.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    n = 0
    while loop.time() - started < 2.0:  # AAPL every 5 ms, MSFT once
        n += 1
        sender.offer("AAPL", encoded("AAPL", n))
        if n == 1:
            sender.offer("MSFT", encoded("MSFT", 0))
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.6)  # the last held quote leaves when due
    aapl = [q["n"] for frame in socket.decoded() for q in frame["quotes"] if q["symbol"] == "AAPL"]
    msft = [q["n"] for frame in socket.decoded() for q in frame["quotes"] if q["symbol"] == "MSFT"]
    assert 4 <= len(aapl) <= 6, aapl  # about 2 a second over 2.6 s, not one per 5 ms
    assert aapl == sorted(aapl)
    assert aapl[-1] == n, "the held quote that leaves is the latest one"
    assert msft == [0], "another symbol is not held back by AAPL's pace"


def frames_sent(socket: Socket, count: int) -> Callable[[], bool]:
    return lambda: len(socket.frames) == count


async def test_throttle_off_again_sends_at_every_tick(sender: ConflatingSender, socket: Socket) -> None:
    sender.throttle(1)
    sender.throttle(0)
    sender.start()
    for n in range(5):
        sender.offer("AAPL", encoded("AAPL", n))
        await until(socket, frames_sent(socket, n + 1))
    assert [frame["quotes"][0]["n"] for frame in socket.decoded()] == [0, 1, 2, 3, 4]


class CountingClock(SendClock):
    """The frame tick, counting the senders it is asked to wake."""

    def __init__(self) -> None:
        super().__init__(0)
        self.scheduled = 0

    def schedule(self, sender: ConflatingSender) -> None:
        self.scheduled += 1
        super().schedule(sender)


async def test_a_throttled_quote_that_cannot_leave_yet_does_not_wake_the_sender(socket: Socket) -> None:
    clock = CountingClock()
    sender = ConflatingSender(socket.send_text, socket.on_slow, slow_after=5.0, clock=clock)
    sender.throttle(1)
    sender.start()
    try:
        sender.offer("AAPL", encoded("AAPL", 0))
        await until(socket, frames_sent(socket, 1))
        for n in range(1, 101):  # 100 quotes within the next half second: none may leave before 1 s
            sender.offer("AAPL", encoded("AAPL", n))
            await asyncio.sleep(0.005)
        assert clock.scheduled == 1, "only the first quote woke the sender"
        await until(socket, frames_sent(socket, 2), within=1.5)  # the hold timer, once AAPL is due
    finally:
        await sender.stop()

    assert [frame["quotes"][0]["n"] for frame in socket.decoded()] == [0, 100]


async def test_conflated_dropped_and_sent_quotes_are_counted(
    sender: ConflatingSender, socket: Socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = StreamCounts()
    monkeypatch.setattr("streaming.sender.STREAM_COUNTS", counts)
    socket.gate.clear()
    sender.start()
    sender.offer("FIRST", encoded("FIRST", 0))
    await until(socket, lambda: len(socket.started) == 1)  # stuck in its send: what comes now waits
    for n in range(5):
        sender.offer("AAPL", encoded("AAPL", n))  # 4 of them replaced by the next
    sender.offer("MSFT", encoded("MSFT", 0))
    sender.drop({"MSFT"})  # no longer followed: never sent
    socket.gate.set()
    await until(socket, lambda: len(socket.frames) == 2)
    sender.offer("GONE", encoded("GONE", 0))
    await sender.stop()  # closed with a quote still pending
    assert (counts.conflated, counts.dropped, counts.quotes_out) == (4, 2, 2)
    assert sum(counts.latency) == 2  # one observation per quote frame


class Connection:
    """What a consumer gives its sender: its own bound methods."""

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self.written: list[bytes] = []
        self.writable = True

    async def send_text(self, text: str) -> None:
        await self.socket.send_text(text)

    async def on_slow(self) -> None:
        await self.socket.on_slow()

    def write_now(self, frame: bytes) -> bool:
        if self.writable:
            self.written.append(frame)
        return self.writable


async def test_a_stopped_sender_lets_its_connection_go_without_a_garbage_collection(socket: Socket) -> None:
    """The callbacks are the connection's methods: a stopped sender must not keep a cycle through them
    (a web process that collects its oldest generation rarely grew with every closed connection)."""
    connection = Connection(socket)
    connection.sender = ConflatingSender(  # type: ignore[attr-defined]
        connection.send_text, connection.on_slow, slow_after=5.0, clock=SendClock(0.01),
        on_failed=connection.on_slow, write_now=connection.write_now,
    )  # fmt: skip
    connection.sender.start()  # type: ignore[attr-defined]
    connection.sender.offer("AAPL", encoded("AAPL", 1))  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    assert len(connection.written) == 1  # the tick wrote it through write_now
    await connection.sender.stop()  # type: ignore[attr-defined]
    gone = weakref.ref(connection)
    gc.disable()
    try:
        del connection
        assert gone() is None
    finally:
        gc.enable()


async def test_a_writable_connection_gets_the_tick_s_shared_frame_without_its_task(socket: Socket) -> None:
    clock = SendClock(0.02)
    connections = [Connection(socket) for _ in range(3)]
    senders = [ConflatingSender(c.send_text, c.on_slow, slow_after=5.0, clock=clock, write_now=c.write_now)
               for c in connections]  # fmt: skip
    connections[2].writable = False  # its socket is full: the frame goes through its task, later
    for sender in senders:
        sender.start()
        for n, symbol in enumerate(SYMBOLS[:2]):
            sender.offer(symbol, encoded(symbol, n))
    await until(socket, lambda: len(socket.frames) == 1)
    first, second = (c.written for c in connections[:2])
    assert first == second == [websocket_text_frame(update_payload([encoded(s, n) for n, s in enumerate(SYMBOLS[:2])]))]
    assert first[0] is second[0], "built once for the tick"
    assert connections[2].written == []
    assert [q["symbol"] for q in socket.decoded()[0]["quotes"]] == SYMBOLS[:2]
    for sender in senders:
        await sender.stop()


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_a_websocket_text_frame_has_rfc_6455_s_header(length: int) -> None:
    payload = b"x" * length
    frame = websocket_text_frame(payload)
    assert frame[0] == 0x81  # FIN, text
    if length < 126:
        assert (frame[1], frame[2:]) == (length, payload)
    elif length < 65536:
        assert (frame[1], int.from_bytes(frame[2:4], "big"), frame[4:]) == (126, length, payload)
    else:
        assert (frame[1], int.from_bytes(frame[2:10], "big"), frame[10:]) == (127, length, payload)


async def test_quotes_offered_before_start_wait_for_it_even_on_a_writable_socket(socket: Socket) -> None:
    """The consumer sends its snapshot between joining the room and start(): nothing may overtake it."""
    connection = Connection(socket)
    sender = ConflatingSender(connection.send_text, connection.on_slow, slow_after=5.0, clock=SendClock(0.01),
                              write_now=connection.write_now)  # fmt: skip
    sender.offer("AAPL", encoded("AAPL", 1))
    await asyncio.sleep(0.05)  # ticks went by
    assert connection.written == []
    assert socket.frames == []
    sender.start()
    await until(socket, lambda: len(socket.frames) == 1)  # the pending quote, through the task
    await sender.stop()


def sender_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_coro().__qualname__ == "ConflatingSender._run"]  # type: ignore[union-attr]


async def test_a_sender_holds_a_task_only_while_it_has_something_to_send(
    sender: ConflatingSender, socket: Socket
) -> None:
    """20,000 idle connections would otherwise each keep a task and its frames waiting (memory per connection)."""
    sender.start()
    await asyncio.sleep(0)
    assert sender_tasks() == []
    sender.message('{"type": "hello"}')
    sender.offer("AAPL", encoded("AAPL", 1))
    assert len(sender_tasks()) == 1
    await until(socket, lambda: len(socket.frames) == 2)
    await asyncio.sleep(0)
    assert sender_tasks() == [], "done sending: the task ended"
    sender.message('{"type": "again"}')  # and a new one starts for the next message
    await until(socket, lambda: len(socket.frames) == 3)
    assert [frame["type"] for frame in socket.decoded()] == ["hello", "quotes", "again"]


async def test_a_sender_whose_send_failed_starts_no_new_task(socket: Socket) -> None:
    failures: list[str] = []

    async def failing_send(text: str) -> None:
        raise OSError("client gone")

    async def on_failed() -> None:
        failures.append("failed")

    sender = ConflatingSender(failing_send, socket.on_slow, slow_after=5.0, clock=SendClock(0), on_failed=on_failed)
    sender.start()
    sender.message('{"type": "hello"}')
    await asyncio.sleep(0.01)
    assert failures == ["failed"]
    sender.message('{"type": "after"}')
    sender.offer("AAPL", encoded("AAPL", 1))
    await asyncio.sleep(0.01)
    assert sender_tasks() == []
    assert failures == ["failed"], "reported once"
    await sender.stop()


async def test_a_sender_whose_send_failed_writes_no_tick_frame_either(socket: Socket) -> None:
    connection = Connection(socket)

    async def failing_send(text: str) -> None:
        raise OSError("client gone")

    sender = ConflatingSender(failing_send, socket.on_slow, slow_after=5.0, clock=SendClock(0.01),
                              write_now=connection.write_now)  # fmt: skip
    sender.start()
    sender.message('{"type": "hello"}')
    await asyncio.sleep(0.02)
    sender.offer("AAPL", encoded("AAPL", 1))
    await asyncio.sleep(0.05)  # ticks went by
    assert connection.written == []
    await sender.stop()
