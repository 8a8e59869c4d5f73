"""Tasks stop for sure: a cancellation lost in Python 3.11's `asyncio.wait_for` is repeated (core.tasks)."""

import asyncio
import sys

from core.tasks import cancel_until_done, where


async def waits_for_a_call_then_sleeps() -> None:
    """What a task making a Redis call looks like: redis-py sends through `wait_for`, then the task waits."""
    await asyncio.wait_for(asyncio.sleep(0), 1)
    await asyncio.sleep(3600)


async def test_a_cancellation_lost_in_wait_for_is_repeated_until_the_task_ends() -> None:
    task = asyncio.create_task(waits_for_a_call_then_sleeps())
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the task is in `wait_for`, whose call has just finished: cancel now
    task.cancel()
    await asyncio.sleep(0.05)
    if sys.version_info < (3, 12):  # CPython gh-86296: the result is returned, the cancellation is lost
        assert not task.done(), "one cancellation should have been lost here"
        assert "test_tasks.py" in where(task)

    stuck = await cancel_until_done([task], within=2)

    assert stuck == set()
    assert task.cancelled()


async def test_a_task_that_will_not_stop_is_returned_after_the_bound() -> None:
    released = asyncio.Event()
    cancellations = 0

    async def ignores_cancellation() -> None:
        nonlocal cancellations
        while not released.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancellations += 1

    task = asyncio.create_task(ignores_cancellation(), name="stubborn")
    await asyncio.sleep(0)

    stuck = await cancel_until_done([task], within=0.6)

    assert stuck == {task}
    assert cancellations >= 3, "cancelled again while it ran"
    assert where(task).startswith("stubborn at test_tasks.py:")
    released.set()
    task.cancel()
    await asyncio.wait([task], timeout=1)
    assert task.done()


async def test_finished_tasks_and_no_tasks_return_at_once() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done

    assert await cancel_until_done([done], within=5) == set()
    assert await cancel_until_done([], within=5) == set()
    assert not done.cancelled()
