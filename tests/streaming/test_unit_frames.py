"""What a connection may send: the action budget and the bad-frame window (streaming.frames)."""

from streaming.frames import (
    ACTIONS_BURST,
    ACTIONS_PER_SECOND,
    BAD_FRAMES_ALLOWED,
    BAD_FRAMES_WINDOW_SECONDS,
    FrameGuard,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_actions_are_refused_until_the_budget_refills() -> None:
    clock = FakeClock()
    guard = FrameGuard(clock=clock)
    assert all(guard.action() for _ in range(ACTIONS_BURST))
    assert not guard.action()
    clock.now += 1 / ACTIONS_PER_SECOND
    assert guard.action()
    assert not guard.action()


def test_the_budget_refills_to_the_burst_and_no_further() -> None:
    clock = FakeClock()
    guard = FrameGuard(clock=clock)
    clock.now += 3600
    assert sum(guard.action() for _ in range(ACTIONS_BURST * 3)) == ACTIONS_BURST


def test_bad_frames_close_the_connection_past_the_allowance_within_the_window() -> None:
    clock = FakeClock()
    guard = FrameGuard(clock=clock)
    assert [guard.bad_frame() for _ in range(BAD_FRAMES_ALLOWED)] == [False] * BAD_FRAMES_ALLOWED
    assert guard.bad_frame() is True


def test_bad_frames_older_than_the_window_are_forgotten() -> None:
    clock = FakeClock()
    guard = FrameGuard(clock=clock)
    for _ in range(BAD_FRAMES_ALLOWED):
        guard.bad_frame()
    clock.now += BAD_FRAMES_WINDOW_SECONDS + 0.1
    assert guard.bad_frame() is False
