"""config.slim: the queue and flag each websocket gets instead of asyncio.Queue and asyncio.Event behave as
those do for what uvicorn asks of them, and an idle one holds no list at all."""

import asyncio
import sys

import pytest

from config.slim import Flag, ReceiveQueue

pytestmark = pytest.mark.asyncio


async def test_items_come_out_in_order_and_a_reader_waits_for_the_next() -> None:
    queue: ReceiveQueue[int] = ReceiveQueue()
    assert queue.empty()
    assert queue.qsize() == 0
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert not queue.empty()
    assert queue.qsize() == 2
    assert [await queue.get(), await queue.get()] == [1, 2]
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put_nowait(3)
    assert await asyncio.wait_for(waiting, 1) == 3
    assert queue.empty()


async def test_a_cancelled_reader_leaves_the_queue_usable() -> None:
    queue: ReceiveQueue[str] = ReceiveQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    queue.put_nowait("after")
    assert await asyncio.wait_for(queue.get(), 1) == "after"


async def test_a_second_reader_at_once_is_refused() -> None:
    queue: ReceiveQueue[str] = ReceiveQueue()
    first = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one reader"):
        await queue.get()
    queue.put_nowait("x")
    assert await asyncio.wait_for(first, 1) == "x"


async def test_the_flag_wakes_every_waiter_when_set_and_waits_again_once_cleared() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    assert await flag.wait() is True, "set: no wait"
    flag.clear()
    again = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not again.done()
    again.cancel()
    with pytest.raises(asyncio.CancelledError):
        await again
    flag.set()
    assert flag.is_set()


async def test_idle_ones_are_small() -> None:
    queue: ReceiveQueue[int] = ReceiveQueue()
    queue.put_nowait(1)
    await queue.get()
    flag = Flag()
    flag.set()
    slim = sys.getsizeof(queue) + sys.getsizeof(flag)
    stock = sys.getsizeof(asyncio.Queue()._queue) * 4 + sys.getsizeof(asyncio.Event()._waiters)  # type: ignore[attr-defined]
    assert slim < 200 < stock, (slim, stock)
