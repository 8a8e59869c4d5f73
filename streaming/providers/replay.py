"""The replay provider: historical bars from CSV files, played back on a clock every process shares.

Data (`REPLAY_PATH`, a CSV file or a folder of them; every `*.csv` of a folder, in name order):

* columns, case-insensitive: `symbol` (else the file name is the symbol), `date` or `datetime` (or an
  unnamed first column of dates, as pandas writes its index), `open`, `high`, `low`, `close`, and an
  optional `volume`; or `close` (or its synonym `price`) alone, each bar then opening at the previous
  close (the first at its own close), its high and low being the larger and smaller of open and close;
* dates ISO 8601 (`2004-08-19`, `2004-08-19 09:30:00`, with or without an offset; naive means UTC) or
  `Jan 1 2000`; strictly increasing within a symbol (also across the files of a folder);
* a bad file is refused as a whole, before anything streams, by a `ReplayDataError` naming the file,
  the line and the reason.

Clock: replay time = first bar time + ((wall time - the Unix epoch) × speed) modulo the data set's span
(first bar of any symbol to the end of the last bar of any symbol), so every process computes the same
quote for the same wall time: a feed failover or a second feed process agrees with the first, and a
delayed plan's history is there from its first second. The data loops.

A bar lasts until the next bar of its symbol (a daily bar on a Friday lasts until Monday); the last bar
of a symbol lasts as long as the one before it (one day for a symbol with a single bar). Outside its own
bars (before its first, after its last) a symbol is quoted flat at its first open or its last close.

Intrabar path: deterministic and piecewise linear, open → low → high → close for a bar that closes at
or above its open, open → high → low → close for one that closes below it (the usual convention: a
rising bar made its low first). The time of each leg is proportional to its length (a constant speed
along the path), so the price starts at the open, ends at the close and never leaves [low, high]. Bid
and ask sit a small spread around the price, clamped to the bar's range; volume is the bar's volume
pro rata to the part of the bar elapsed; change and change_pct are relative to the previous bar's close
(the first bar's: its open).
"""

import asyncio
import bisect
import csv
import io
import itertools
import math
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from django.conf import settings

from streaming.quotes import Quote

from .base import MarketDataProvider, ProviderStatus
from .simulated import TICK_INTERVAL_SECONDS

DEFAULT_SPEED = 60.0  # history seconds per wall second: one minute of history per second
ANCHOR_MS = 0  # the Unix epoch: the same anchor in every process, whenever it started
SPREAD_FRACTION = 0.0005  # bid/ask 5 basis points apart (at least one price increment)
SINGLE_BAR_MS = 86_400_000  # the duration of a symbol's only bar
SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.-]{0,11}")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})")


class ReplayDataError(ValueError):
    """Replay data that cannot be played: says which file, which line (when there is one) and why."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of one symbol: it starts at `start_ms` (epoch ms) and lasts until the symbol's next bar."""

    start_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: int


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_bars(path: Path) -> dict[str, list[Bar]]:
    """Every bar of a CSV file, or of every *.csv in a folder (in name order), per symbol, oldest first.

    Raises ReplayDataError for a missing path, a folder without CSV files, or any bad line.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        if not files:
            raise ReplayDataError(path, "no CSV file (*.csv) in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise ReplayDataError(path, "no such file or folder")
    bars: dict[str, list[Bar]] = {}
    for file in files:
        _load_file(file, bars)
    return bars


@dataclass(frozen=True, slots=True)
class _Columns:
    date: int
    close: int
    symbol: int | None
    open: int | None  # None: a close-only file
    high: int | None
    low: int | None
    volume: int | None

    @property
    def width(self) -> int:
        """The fields a row needs: up to the last column read."""
        used = (self.date, self.close, self.symbol, self.open, self.high, self.low, self.volume)
        return max(column for column in used if column is not None) + 1


def _columns(path: Path, header: list[str]) -> _Columns:
    names = [name.strip().lower() for name in header]
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if not name:
            continue
        if name in index:
            raise ReplayDataError(path, f"the column {name!r} appears twice", 1)
        index[name] = position

    def refuse(reason: str) -> ReplayDataError:
        return ReplayDataError(path, f"{reason} (header: {','.join(header)})", 1)

    if "date" in index and "datetime" in index:
        raise refuse("both a date and a datetime column: keep one")
    if "close" in index and "price" in index:
        raise refuse("both a close and a price column: keep one")
    if "date" in index or "datetime" in index:
        date = index.get("date", index.get("datetime"))
    elif names and not names[0]:
        date = 0  # pandas writes its (date) index as an unnamed first column
    else:
        date = None
    if date is not None and "time" in index:
        raise refuse("a separate time column is not supported: put date and time in one datetime column")
    close = index.get("close", index.get("price"))
    open_, high, low = (index.get(name) for name in ("open", "high", "low"))
    missing = [] if date is not None else ["date (or datetime)"]
    if close is None:
        missing.append("close (or price)")
    if open_ is not None or high is not None or low is not None:  # then all three
        missing += [name for name, column in (("open", open_), ("high", high), ("low", low)) if column is None]
    if missing or date is None or close is None:
        raise refuse(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    return _Columns(
        date=date, close=close, symbol=index.get("symbol"), open=open_, high=high, low=low, volume=index.get("volume")
    )


def _number(path: Path, line: int, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ReplayDataError(path, f"{name} {text!r} is not a number", line) from None
    if not math.isfinite(value):
        raise ReplayDataError(path, f"{name} {text!r} is not a finite number", line)
    if value <= 0:
        raise ReplayDataError(path, f"{name} {text!r} is not a positive price", line)
    return value


def _volume(path: Path, line: int, text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ReplayDataError(path, f"volume {text!r} is not a number", line) from None
    # An integral float ("2265800.0", as pandas writes a column with gaps) is fine; 12.5 shares is not.
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        raise ReplayDataError(path, f"volume {text!r} is not a whole number ≥ 0", line)
    return int(value)


def _timestamp_ms(path: Path, line: int, text: str) -> int:
    """Epoch ms of an ISO 8601 date or datetime (naive = UTC), or of `Jan 1 2000`."""
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        if match := _MONTH_DAY_YEAR.fullmatch(text):
            month = _MONTHS.get(match[1].lower())
            if month is not None:
                try:
                    moment = datetime(int(match[3]), month, int(match[2]), tzinfo=UTC)
                except ValueError:
                    moment = None
    if moment is None:
        raise ReplayDataError(
            path,
            f"date {text!r} is not a date (ISO 8601 such as 2004-08-19 or 2004-08-19 09:30:00, or Jan 1 2000)",
            line,
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _load_file(path: Path, bars: dict[str, list[Bar]]) -> None:
    """Append the file's bars to `bars`, refusing the first bad line."""
    file_symbol = path.stem.strip().upper()
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ReplayDataError(path, f"not UTF-8 text (byte {data[error.start]:#04x})", line) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # blank lines before the header
        if header is None:
            raise ReplayDataError(path, "empty file: no header, no data", 1)
        line = reader.line_num
        columns = _columns(path, header)
        if columns.symbol is None and not SYMBOL_RE.fullmatch(file_symbol):
            raise ReplayDataError(
                path,
                f"no symbol column, and the file name {path.stem!r} is not a symbol "
                "(letters, digits, '.' and '-', up to 12, starting with a letter or digit)",
                line,
            )
        rows = 0
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line (a trailing newline too many)
            if len(row) < columns.width:
                raise ReplayDataError(path, f"{len(row)} fields, the header has {len(header)}", line)
            _load_row(path, line, row, columns, file_symbol, bars)
            rows += 1
    except csv.Error as error:
        raise ReplayDataError(path, f"not valid CSV ({error})", reader.line_num) from None
    if not rows:
        raise ReplayDataError(path, "empty file: a header but no data rows", line + 1)


def _load_row(
    path: Path, line: int, row: list[str], columns: _Columns, file_symbol: str, bars: dict[str, list[Bar]]
) -> None:
    if columns.symbol is None:
        symbol = file_symbol
    else:
        symbol = row[columns.symbol].strip().upper()
        if not SYMBOL_RE.fullmatch(symbol):
            raise ReplayDataError(
                path,
                f"symbol {row[columns.symbol]!r} is not a symbol "
                "(letters, digits, '.' and '-', up to 12, starting with a letter or digit)",
                line,
            )
    start_ms = _timestamp_ms(path, line, row[columns.date].strip())
    series = bars.setdefault(symbol, [])
    if series and start_ms <= series[-1].start_ms:
        previous = datetime.fromtimestamp(series[-1].start_ms / 1000, tz=UTC).isoformat()
        raise ReplayDataError(
            path,
            f"{symbol}: date {row[columns.date].strip()!r} is not after the previous bar's ({previous}); "
            "dates must increase within a symbol",
            line,
        )
    close = _number(path, line, "close", row[columns.close].strip())
    if columns.open is None or columns.high is None or columns.low is None:
        open_ = series[-1].close if series else close
        high, low = max(open_, close), min(open_, close)
    else:
        open_ = _number(path, line, "open", row[columns.open].strip())
        high = _number(path, line, "high", row[columns.high].strip())
        low = _number(path, line, "low", row[columns.low].strip())
        if high < max(open_, close):
            raise ReplayDataError(
                path, f"high {high:g} is below max(open {open_:g}, close {close:g}): a bar never leaves its range", line
            )
        if low > min(open_, close):
            raise ReplayDataError(
                path, f"low {low:g} is above min(open {open_:g}, close {close:g}): a bar never leaves its range", line
            )
    volume = 0 if columns.volume is None else _volume(path, line, row[columns.volume].strip())
    series.append(Bar(start_ms, open_, high, low, close, volume))


# ---------------------------------------------------------------------------------------------
# Playing
# ---------------------------------------------------------------------------------------------


def intrabar_price(bar: Bar, fraction: float) -> float:
    """The price `fraction` (0 to 1) of the way through the bar: open → low → high → close when the bar
    closes at or above its open, open → high → low → close otherwise, at a constant speed along the path.
    """
    first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
    points = (bar.open, first, second, bar.close)
    legs = [abs(b - a) for a, b in itertools.pairwise(points)]
    total = sum(legs)
    if total <= 0:
        return bar.open
    distance = min(max(fraction, 0.0), 1.0) * total
    for (start, end), length in zip(itertools.pairwise(points), legs, strict=True):
        if distance <= length:
            price = start + (end - start) * (distance / length) if length else start
            return min(max(price, bar.low), bar.high)
        distance -= length
    return bar.close


def _decimals(value: float) -> int:
    exponent = Decimal(repr(value)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


@dataclass(frozen=True, slots=True)
class _Series:
    bars: Sequence[Bar]
    starts: list[int]
    ends: list[int]
    previous_closes: list[float]
    decimals: int  # prices are quoted to the data's precision (2 to 6 decimals)


def _series(bars: Sequence[Bar]) -> _Series:
    starts = [bar.start_ms for bar in bars]
    if any(b <= a for a, b in itertools.pairwise(starts)):
        raise ValueError("bars must be in increasing time order")
    last_duration = starts[-1] - starts[-2] if len(starts) > 1 else SINGLE_BAR_MS
    ends = [*starts[1:], starts[-1] + last_duration]
    previous_closes = [bars[0].open, *(bar.close for bar in bars[:-1])]
    decimals = max((_decimals(x) for bar in bars for x in (bar.open, bar.high, bar.low, bar.close)), default=2)
    return _Series(bars, starts, ends, previous_closes, min(max(decimals, 2), 6))


class ReplayProvider(MarketDataProvider):
    """Plays loaded bars back at `speed` history seconds per wall second, the same in every process.

    `ticks_per_second` is the total rate across the subscribed symbols, as for the simulated provider
    (a symbol is quoted at most once per wake-up: its quote cannot change within one instant).
    """

    name = "replay"

    def __init__(
        self,
        bars: Mapping[str, Sequence[Bar]],
        *,
        speed: float = DEFAULT_SPEED,
        ticks_per_second: float = 20.0,
        anchor_ms: int = ANCHOR_MS,
    ) -> None:
        if not bars or any(not series for series in bars.values()):
            raise ValueError("The replay provider needs at least one bar per symbol.")
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(
                f"The replay speed must be a positive number of history seconds per second, not {speed!r}."
            )
        if not (math.isfinite(ticks_per_second) and ticks_per_second > 0):
            raise ValueError(f"ticks_per_second must be positive, not {ticks_per_second!r}.")
        self.speed = float(speed)
        self.ticks_per_second = ticks_per_second
        self.anchor_ms = anchor_ms
        self._series = {symbol: _series(series) for symbol, series in bars.items()}
        self.first_ms = min(series.starts[0] for series in self._series.values())
        self.end_ms = max(series.ends[-1] for series in self._series.values())
        self.span_ms = self.end_ms - self.first_ms
        # Exact rational arithmetic for the clock: the same wall ms gives the same replay time everywhere.
        self._speed = Fraction(self.speed).limit_denominator(1_000_000)
        self._symbols: list[str] = []
        self._unserved: dict[str, str] = {}
        self._next = 0  # round-robin position in _symbols
        self._carry = 0.0
        self._running = False
        self._last_quote_ms: int | None = None

    @classmethod
    def from_settings(cls) -> "ReplayProvider":
        """The provider that REPLAY_PATH and REPLAY_SPEED describe (the data is loaded and checked now)."""
        raw_path = str(getattr(settings, "REPLAY_PATH", "") or "").strip()
        if not raw_path:
            raise ReplayDataError(
                "REPLAY_PATH", "MARKET_DATA_PROVIDER=replay needs REPLAY_PATH: a CSV file or a folder of CSV files"
            )
        raw_speed = getattr(settings, "REPLAY_SPEED", DEFAULT_SPEED)
        try:
            speed = float(raw_speed)
        except (TypeError, ValueError):
            speed = math.nan
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(
                f"REPLAY_SPEED must be a positive number of history seconds per wall second, not {raw_speed!r}."
            )
        # The pace of the simulated feed unless REPLAY_TICKS_PER_SECOND says otherwise.
        ticks: float = getattr(settings, "REPLAY_TICKS_PER_SECOND", 0) or getattr(
            settings, "SIMULATED_TICKS_PER_SECOND", 20.0
        )
        return cls(load_bars(Path(raw_path).expanduser()), speed=speed, ticks_per_second=float(ticks))

    # The clock and the quote of any moment ------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """Every symbol in the data, sorted."""
        return sorted(self._series)

    @property
    def has_history(self) -> bool:
        return True

    def replay_time_ms(self, ts_ms: int) -> float:
        """The history time (epoch ms) played at wall time `ts_ms`: it depends on nothing else."""
        scaled = (ts_ms - self.anchor_ms) * self._speed.numerator % (self.span_ms * self._speed.denominator)
        return self.first_ms + scaled / self._speed.denominator

    def quote_at(self, symbol: str, ts_ms: int) -> Quote | None:
        series = self._series.get(symbol)
        if series is None:
            return None
        moment = self.replay_time_ms(ts_ms)
        i = bisect.bisect_right(series.starts, moment) - 1
        if i < 0:  # before the symbol's first bar: flat at its open
            i, fraction = 0, 0.0
        else:
            start, end = series.starts[i], series.ends[i]
            fraction = min(1.0, (moment - start) / (end - start))  # 1 after the symbol's last bar
        bar = series.bars[i]
        decimals = series.decimals
        price = min(max(round(intrabar_price(bar, fraction), decimals), bar.low), bar.high)
        scale = 10**decimals
        half_spread = max(0.5 / scale, price * SPREAD_FRACTION / 2)
        # Bid rounds down and ask up (at least one increment apart), then both stay inside the bar.
        bid = max(bar.low, min(price, round(math.floor((price - half_spread) * scale + 1e-6) / scale, decimals)))
        ask = min(bar.high, max(price, round(math.ceil((price + half_spread) * scale - 1e-6) / scale, decimals)))
        previous_close = series.previous_closes[i]
        change = round(price - previous_close, decimals)
        return Quote(
            symbol=symbol,
            price=price,
            bid=bid,
            ask=ask,
            volume=int(bar.volume * fraction),
            change=change,
            change_pct=round(change / previous_close * 100, 2),
            ts=ts_ms,
        )

    # The stream ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False

    async def subscribe(self, symbols: Iterable[str]) -> None:
        wanted = set(symbols)
        for symbol in wanted - self._series.keys():
            self._unserved[symbol] = "unknown_symbol"
        self._symbols = sorted(set(self._symbols) | (wanted & self._series.keys()))

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = set(symbols)
        self._symbols = [s for s in self._symbols if s not in gone]
        for symbol in gone:
            self._unserved.pop(symbol, None)

    def status(self) -> ProviderStatus:
        return ProviderStatus(last_quote_ms=self._last_quote_ms, unserved=dict(self._unserved))

    async def quotes(self) -> AsyncIterator[list[Quote]]:
        next_wake = time.monotonic()
        while self._running:
            next_wake += TICK_INTERVAL_SECONDS
            await asyncio.sleep(max(0.0, next_wake - time.monotonic()))
            symbols = self._symbols
            if not symbols or not self._running:
                continue
            self._carry += self.ticks_per_second * TICK_INTERVAL_SECONDS
            due, self._carry = int(self._carry), self._carry - int(self._carry)
            due = min(due, len(symbols))
            if not due:
                continue
            now_ms = time.time_ns() // 1_000_000
            start = self._next % len(symbols)
            self._next = start + due
            batch = [self.quote_at(symbols[(start + k) % len(symbols)], now_ms) for k in range(due)]
            quotes = [quote for quote in batch if quote is not None]
            if quotes:
                self._last_quote_ms = now_ms
                yield quotes
