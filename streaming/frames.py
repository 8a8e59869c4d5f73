"""How much a connection may send: an action budget and a window of bad frames (plain rules, no I/O)."""

import time
from collections.abc import Callable

# A dashboard sends a handful of actions a minute; a burst of 20 covers a page restoring several
# subscriptions at once. Past that, each action is refused, and refusals count as bad frames.
ACTIONS_PER_SECOND = 10.0
ACTIONS_BURST = 20
BAD_FRAMES_ALLOWED = 5
BAD_FRAMES_WINDOW_SECONDS = 10.0


class FrameGuard:
    """Per connection: a token bucket for actions and a sliding window of bad frames."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens = float(ACTIONS_BURST)
        self._filled_at = clock()
        self._bad: list[float] = []  # at most BAD_FRAMES_ALLOWED + 1 (a list: an empty deque takes ~600 bytes)

    def action(self) -> bool:
        """Spend one action; False when the budget is empty (the frame is refused, not handled)."""
        now = self._clock()
        self._tokens = min(float(ACTIONS_BURST), self._tokens + (now - self._filled_at) * ACTIONS_PER_SECOND)
        self._filled_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def bad_frame(self) -> bool:
        """Record a bad (or refused) frame; True once there are too many: close with 4400."""
        now = self._clock()
        bad = self._bad
        bad.append(now)
        while bad and now - bad[0] > BAD_FRAMES_WINDOW_SECONDS:
            del bad[0]
        return len(bad) > BAD_FRAMES_ALLOWED
