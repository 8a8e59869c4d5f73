"""The fuzzing's shared parts: one budget knob, hypothesis settings, a guard on ERROR logs, case counts.

FUZZ_EXAMPLES sets the examples per target: 100 by default (the whole fuzz set in well under a
minute of `make test`), 10,000 in `make fuzz`. The small budget is derandomized, so `make test`
tries the same inputs on every run and a failure there is a change of the code, never the luck of
a draw; the long run draws afresh each time (and prints the failing example's reproduction blob).
"""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.live import record_figure

DEFAULT_EXAMPLES = 100
LONG_RUN_EXAMPLES = 10_000


def fuzz_examples() -> int:
    """Examples per target: FUZZ_EXAMPLES, else the small budget of `make test`."""
    return int(os.environ.get("FUZZ_EXAMPLES") or DEFAULT_EXAMPLES)


def fuzz_settings(*, examples: int | None = None) -> settings:
    """Settings of every fuzz target: the budget, no deadline (2 shared cores: a slow example is not a bug)."""
    budget = examples if examples is not None else fuzz_examples()
    return settings(
        max_examples=budget,
        deadline=None,
        derandomize=budget < LONG_RUN_EXAMPLES,
        database=None,  # no .hypothesis/ in the work tree; a failure prints its blob to replay it
        print_blob=True,
        # The fixtures (committed organisations, open connections) are shared by the examples on purpose.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


# -- logs -----------------------------------------------------------------------------------------
class _ErrorRecords(logging.Handler):
    def __init__(self, answers: frozenset[int]) -> None:
        super().__init__(level=logging.ERROR)
        self.answers = answers
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Django logs every 5xx response at ERROR; one the view chose to send is an answer, not a failure.
        if getattr(record, "status_code", None) not in self.answers or record.exc_info:
            self.records.append(record)


@contextmanager
def no_error_logged(*, answers: frozenset[int] = frozenset()) -> Iterator[list[logging.LogRecord]]:
    """Fail when anything logs at ERROR or above meanwhile (an unhandled exception of a request or consumer),
    but Django's line for a response whose status is one of `answers` (a deliberate 503, say)."""
    handler = _ErrorRecords(answers)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
    assert not handler.records, "logged at ERROR: " + "; ".join(
        f"{r.name}: {r.getMessage()}" + (f" ({r.exc_info[1]!r})" if r.exc_info else "") for r in handler.records
    )


# -- counts ---------------------------------------------------------------------------------------
@dataclass
class Cases:
    """How many inputs one target tried, and how each was answered (for the figure)."""

    target: str
    tried: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.tried += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def record(self) -> None:
        answered = ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes.items()))
        record_figure(f"fuzz {self.target}", f"{self.tried} cases, 0 errors ({answered})")


@contextmanager
def fuzz_target(name: str) -> Iterator[Cases]:
    """Count a target's cases (each checks its own logs); record the figure once they ran."""
    cases = Cases(name)
    yield cases
    if cases.tried:
        cases.record()


# -- strategies -----------------------------------------------------------------------------------
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON parsers take as numbers
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)


def json_values(*, leaves: st.SearchStrategy[Any] = SCALARS, max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON document: scalars, lists and objects nested (st.recursive)."""
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
        max_leaves=max_leaves,
    )


def nested(depth: int, kind: str) -> str:
    """A JSON document nested `depth` deep, written out (hypothesis' own trees stay shallow)."""
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def deep_nesting() -> st.SearchStrategy[str]:
    """Nesting around the parsers' limits (Python's recursion limit is 1,000; orjson's depth limit 1,024)."""
    depths = st.integers(min_value=1, max_value=1_100) | st.sampled_from([999, 1_000, 1_023, 1_024, 1_025])
    return st.builds(nested, depths, st.sampled_from(["list", "object"]))


def repeated(strategy: st.SearchStrategy[Any], *, max_size: int) -> st.SearchStrategy[list[Any]]:
    """Long lists cheaply: a short drawn list repeated up to `max_size` items (thousands of symbols)."""

    def grow(items: list[Any], size: int) -> list[Any]:
        return (items * (size // len(items) + 1))[:size]

    return st.builds(grow, st.lists(strategy, min_size=1, max_size=8), st.integers(min_value=1, max_value=max_size))
