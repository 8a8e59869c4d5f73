"""The alert engine's index: per (delay, symbol), thresholds kept sorted, so a quote touches only what it crossed.

Each (delay, symbol) with alerts has a book of four ladders: price levels to cross upwards, price
levels to cross downwards, and the same two for the day's change %. A ladder is a sorted list of
levels with the rules at those levels alongside. A quote that moves the price from `prev` to `cur`
(upwards) fires exactly the "above" rules whose level lies in (prev, cur]: two bisections find that
slice, so the work per quote is O(log n + fired) for the n alerts on its own symbol and nothing for
alerts on other symbols. Downwards, the "below" rules in [cur, prev).

Crossing needs a previous value: the first quote a book sees only sets it (an alert created while
the price is already above its level waits for the next crossing). An engine that takes over from
another seeds books with the previous leader's last values (alerts.store), so a crossing that
happened between the two is seen, and the once-per-cooldown guard in the database keeps it from
firing twice.

Pure Python, no Django: unit-tested and benchmarked on its own (`python -m alerts.bench`).
"""

import bisect
import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class Kind(enum.Enum):
    """What a rule compares, and in which direction it fires (the values are AlertCondition's)."""

    PRICE_ABOVE = "price_above"
    PRICE_BELOW = "price_below"
    CHANGE_ABOVE = "change_pct_above"
    CHANGE_BELOW = "change_pct_below"


class QuoteLike(Protocol):
    @property
    def symbol(self) -> str: ...
    @property
    def price(self) -> float: ...
    @property
    def change_pct(self) -> float: ...
    @property
    def ts(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """One active alert as the engine evaluates it."""

    schema: str
    alert_id: int
    symbol: str
    kind: Kind
    level: float
    cooldown_ms: int


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule whose condition a quote met, outside its cooldown: to be written and delivered."""

    rule: Rule
    delay_minutes: int
    price: float
    change_pct: float
    quote_ts: int


@dataclass(slots=True)
class Ladder:
    """Levels in ascending order, with the rule of each level at the same position."""

    levels: list[float] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    def add(self, rule: Rule) -> None:
        at = bisect.bisect_right(self.levels, rule.level)
        self.levels.insert(at, rule.level)
        self.rules.insert(at, rule)

    def remove(self, rule: Rule) -> None:
        at = bisect.bisect_left(self.levels, rule.level)
        while at < len(self.rules) and self.levels[at] == rule.level:
            if self.rules[at] == rule:
                del self.levels[at], self.rules[at]
                return
            at += 1
        raise KeyError(rule)

    def crossed_upwards(self, prev: float, cur: float) -> list[Rule]:
        """Rules whose level is in (prev, cur]: the value rose to or through them."""
        return self.rules[bisect.bisect_right(self.levels, prev) : bisect.bisect_right(self.levels, cur)]

    def crossed_downwards(self, prev: float, cur: float) -> list[Rule]:
        """Rules whose level is in [cur, prev): the value fell to or through them."""
        return self.rules[bisect.bisect_left(self.levels, cur) : bisect.bisect_left(self.levels, prev)]

    def __len__(self) -> int:
        return len(self.levels)


@dataclass(slots=True)
class Book:
    """Every rule on one symbol at one delay, and the last value it evaluated."""

    price_above: Ladder = field(default_factory=Ladder)
    price_below: Ladder = field(default_factory=Ladder)
    change_above: Ladder = field(default_factory=Ladder)
    change_below: Ladder = field(default_factory=Ladder)
    last_price: float | None = None
    last_change: float | None = None

    def ladder(self, kind: Kind) -> Ladder:
        if kind is Kind.PRICE_ABOVE:
            return self.price_above
        if kind is Kind.PRICE_BELOW:
            return self.price_below
        if kind is Kind.CHANGE_ABOVE:
            return self.change_above
        return self.change_below

    def __len__(self) -> int:
        return len(self.price_above) + len(self.price_below) + len(self.change_above) + len(self.change_below)

    def crossed(self, price: float, change: float) -> Iterator[Rule]:
        """The rules this quote's price and change % crossed since the previous quote; then remember both."""
        prev_price, prev_change = self.last_price, self.last_change
        self.last_price, self.last_change = price, change
        if prev_price is not None and price != prev_price:
            if price > prev_price:
                yield from self.price_above.crossed_upwards(prev_price, price)
            else:
                yield from self.price_below.crossed_downwards(prev_price, price)
        if prev_change is not None and change != prev_change:
            if change > prev_change:
                yield from self.change_above.crossed_upwards(prev_change, change)
            else:
                yield from self.change_below.crossed_downwards(prev_change, change)


@dataclass(slots=True)
class Placed:
    delay_minutes: int
    rules: list[Rule]


class AlertIndex:
    """Every organisation's active alerts, by (delay, symbol); replaced one organisation at a time."""

    def __init__(self) -> None:
        self.books: dict[tuple[int, str], Book] = {}
        self._placed: dict[str, Placed] = {}  # schema → its delay and rules
        # schema → alert id → quote time (ms) before which the alert stays quiet (its cooldown).
        self.quiet: dict[str, dict[int, int]] = {}
        self.suppressed = 0  # crossings inside a cooldown, for the engine's status and tests
        self.evaluated = 0  # quotes that reached a book
        self._touched: set[tuple[int, str]] = set()  # books evaluated since touched_take()

    def __len__(self) -> int:
        return sum(len(placed.rules) for placed in self._placed.values())

    @property
    def schemas(self) -> set[str]:
        return set(self._placed)

    def placed(self, schema: str) -> tuple[int, list[Rule]]:
        """An organisation's delay and rules, as last replaced."""
        placed = self._placed[schema]
        return placed.delay_minutes, list(placed.rules)

    def watched(self) -> set[tuple[int, str]]:
        """The (delay, symbol) pairs some alert needs quotes of."""
        return set(self.books)

    def schema_replace(
        self, schema: str, delay_minutes: int, rules: Iterable[Rule], quiet_until: Mapping[int, int] | None = None
    ) -> None:
        """Put this organisation's rules (all of them, at its plan's delay) in place of what it had.

        `quiet_until` (alert id → ms) comes from the database's last firings; a later time this engine
        already holds (a firing not written yet) is kept.
        """
        self._unplace(schema)
        placed = Placed(delay_minutes, [rule for rule in rules if rule.schema == schema])
        held = self.quiet.pop(schema, {})
        if not placed.rules:
            return
        self._placed[schema] = placed
        for rule in placed.rules:
            book = self.books.get((delay_minutes, rule.symbol))
            if book is None:
                book = self.books[delay_minutes, rule.symbol] = Book()
            book.ladder(rule.kind).add(rule)
        quiet = {rule.alert_id: held[rule.alert_id] for rule in placed.rules if rule.alert_id in held}
        for alert_id, until in (quiet_until or {}).items():
            quiet[alert_id] = max(until, quiet.get(alert_id, until))
        if quiet:
            self.quiet[schema] = quiet

    def schema_remove(self, schema: str) -> None:
        """Forget an organisation (deleted, or none of its alerts is active)."""
        self._unplace(schema)
        self.quiet.pop(schema, None)

    def _unplace(self, schema: str) -> None:
        placed = self._placed.pop(schema, None)
        if placed is None:
            return
        for rule in placed.rules:
            where = (placed.delay_minutes, rule.symbol)
            book = self.books[where]
            book.ladder(rule.kind).remove(rule)
            if not len(book):
                del self.books[where]

    def seed(self, delay_minutes: int, symbol: str, price: float, change_pct: float) -> None:
        """Start a book from a value evaluated before (by another engine), if it has none of its own."""
        book = self.books.get((delay_minutes, symbol))
        if book is not None and book.last_price is None:
            book.last_price, book.last_change = price, change_pct

    def forget_last(self) -> None:
        """Drop every book's last value (before seeding them again after a pause)."""
        for book in self.books.values():
            book.last_price = book.last_change = None

    def touched_take(self) -> dict[int, dict[str, tuple[float, float]]]:
        """The last (price, change %) of every book evaluated since the previous call, per delay."""
        touched, self._touched = self._touched, set()
        values: dict[int, dict[str, tuple[float, float]]] = {}
        for delay_minutes, symbol in touched:
            book = self.books.get((delay_minutes, symbol))
            if book is not None and book.last_price is not None and book.last_change is not None:
                values.setdefault(delay_minutes, {})[symbol] = (book.last_price, book.last_change)
        return values

    def quiet_set(self, schema: str, alert_id: int, until_ms: int) -> None:
        """The database says this alert is quiet until then (another engine fired it)."""
        quiet = self.quiet.setdefault(schema, {})
        quiet[alert_id] = max(until_ms, quiet.get(alert_id, until_ms))

    def evaluate(self, delay_minutes: int, quotes: Mapping[str, QuoteLike]) -> list[Firing]:
        """The firings of one published batch (latest quote per symbol) at one delay."""
        books = self.books
        firings: list[Firing] = []
        for symbol, quote in quotes.items():
            book = books.get((delay_minutes, symbol))
            if book is None:
                continue
            self.evaluated += 1
            self._touched.add((delay_minutes, symbol))
            for rule in book.crossed(quote.price, quote.change_pct):
                quiet = self.quiet.get(rule.schema)
                if quiet is None:
                    quiet = self.quiet[rule.schema] = {}
                elif quiet.get(rule.alert_id, -1) > quote.ts:
                    self.suppressed += 1
                    continue
                quiet[rule.alert_id] = quote.ts + rule.cooldown_ms
                firings.append(Firing(rule, delay_minutes, quote.price, quote.change_pct, quote.ts))
        return firings
