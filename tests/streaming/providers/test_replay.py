"""The replay provider: strict loading of historical bars, a clock every process shares, quotes that
stay inside each bar, and a stream paced like the simulated provider's.

The data sets come with test-only dev dependencies (backtesting's GOOG.csv is AGPL data: tests only).
"""

import asyncio
import bisect
import csv
import dataclasses
import itertools
import random
import shutil
import time
from datetime import UTC, date, datetime
from pathlib import Path

import backtesting
import pytest
import vega_datasets
from pytest_django.fixtures import Settings

from streaming.providers.replay import (
    Bar,
    ReplayDataError,
    ReplayProvider,
    intrabar_price,
    load_bars,
)
from streaming.quotes import Quote

GOOG_CSV = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
STOCKS_CSV = Path(vega_datasets.__file__).parent / "_data" / "stocks.csv"
DAY_MS = 86_400_000
SPEED = 60  # the default: a minute of history per second


def epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass(frozen=True)
class Row:
    """One GOOG.csv row, read without the code under test."""

    start_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: int


@pytest.fixture(scope="module")
def goog_rows() -> list[Row]:
    with GOOG_CSV.open(newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["", "Open", "High", "Low", "Close", "Volume"]
        return [
            Row(epoch_ms(date.fromisoformat(d)), float(o), float(h), float(lo), float(c), int(v))
            for d, o, h, lo, c, v in reader
        ]


@pytest.fixture(scope="module")
def goog_bars() -> dict[str, list[Bar]]:
    return load_bars(GOOG_CSV)


@pytest.fixture(scope="module")
def goog(goog_bars: dict[str, list[Bar]]) -> ReplayProvider:
    return ReplayProvider(goog_bars, speed=SPEED)


# ---------------------------------------------------------------------------------------------
# A real daily data set: backtesting's GOOG.csv (header ",Open,High,Low,Close,Volume")
# ---------------------------------------------------------------------------------------------


def test_goog_loads_every_row(goog_bars: dict[str, list[Bar]], goog_rows: list[Row]) -> None:
    assert list(goog_bars) == ["GOOG"]  # the file name is the symbol
    bars = goog_bars["GOOG"]
    assert len(bars) == len(goog_rows) == 2148
    assert [(b.start_ms, b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        dataclasses.astuple(row) for row in goog_rows
    ]
    assert bars[0] == Bar(epoch_ms(date(2004, 8, 19)), 100.0, 104.06, 95.96, 100.34, 22351900)


def test_goog_loads_quickly() -> None:
    started = time.perf_counter()
    load_bars(GOOG_CSV)
    assert time.perf_counter() - started < 2.0  # ~0.05 s on a shared core


def test_the_clock_is_anchored_at_the_unix_epoch_and_spans_the_data(goog: ReplayProvider, goog_rows: list[Row]) -> None:
    # The span runs to the end of the last bar, which lasts as long as the one before it (a day).
    end = goog_rows[-1].start_ms + (goog_rows[-1].start_ms - goog_rows[-2].start_ms)
    assert (goog.first_ms, goog.end_ms) == (goog_rows[0].start_ms, end)
    assert goog.span_ms == end - goog_rows[0].start_ms
    assert goog.replay_time_ms(0) == goog_rows[0].start_ms
    assert goog.replay_time_ms(1000) == goog_rows[0].start_ms + 60_000  # one minute of history per second
    period = goog.span_ms // SPEED
    assert goog.replay_time_ms(period) == goog_rows[0].start_ms  # then it loops
    assert goog.replay_time_ms(-1000) == end - 60_000


def expected_bar(rows: list[Row], starts: list[int], ts_ms: int) -> tuple[int, float]:
    """Which row applies at wall time `ts_ms`, and how far through it, computed from the CSV alone."""
    first = rows[0].start_ms
    end = rows[-1].start_ms + (rows[-1].start_ms - rows[-2].start_ms)
    moment = first + (ts_ms * SPEED) % (end - first)
    i = bisect.bisect_right(starts, moment) - 1
    bar_end = rows[i + 1].start_ms if i + 1 < len(rows) else end
    return i, (moment - rows[i].start_ms) / (bar_end - rows[i].start_ms)


def assert_inside(quote: Quote, row: Row) -> None:
    assert row.low <= quote.bid <= quote.price <= quote.ask <= row.high, (quote, row)
    assert 0 <= quote.volume <= row.volume


def test_goog_quotes_stay_inside_each_days_range(goog: ReplayProvider, goog_rows: list[Row]) -> None:
    starts = [row.start_ms for row in goog_rows]
    sampler = random.Random(20240819)
    now = now_ms()
    # Wall times over ±15 years (the data loops every ~52 days of wall time at 60×), and right now.
    samples = [sampler.randrange(now - 15 * 365 * DAY_MS, now + 15 * 365 * DAY_MS) for _ in range(20_000)]
    seen = set()
    for ts in [*samples, now]:
        quote = goog.quote_at("GOOG", ts)
        assert quote is not None
        i, fraction = expected_bar(goog_rows, starts, ts)
        seen.add(i)
        row = goog_rows[i]
        assert_inside(quote, row)
        assert quote.ts == ts
        assert quote.symbol == "GOOG"
        previous_close = goog_rows[i - 1].close if i else row.open
        assert quote.change == pytest.approx(quote.price - previous_close, abs=0.006)
        assert quote.change_pct == pytest.approx((quote.price - previous_close) / previous_close * 100, abs=0.006)
        assert quote.volume == int(row.volume * fraction)
    assert len(seen) > 2000  # nearly every day was sampled


def test_goog_volume_never_decreases_within_a_bar(goog: ReplayProvider, goog_rows: list[Row]) -> None:
    starts = [row.start_ms for row in goog_rows]
    sampler = random.Random(5)
    for i in sampler.sample(range(len(goog_rows)), 150):
        start = (goog_rows[i].start_ms - goog_rows[0].start_ms) // SPEED  # the wall ms the bar starts at
        end = (starts[i + 1] - goog_rows[0].start_ms) // SPEED if i + 1 < len(starts) else goog.span_ms // SPEED
        times = sorted(sampler.randrange(start, end) for _ in range(60))
        quotes = [goog.quote_at("GOOG", ts) for ts in times]
        volumes = [q.volume for q in quotes if q is not None]
        assert len(volumes) == len(times)
        assert volumes == sorted(volumes)
        for quote, ts in zip(quotes, times, strict=True):
            assert quote is not None
            assert expected_bar(goog_rows, starts, ts)[0] == i
            assert_inside(quote, goog_rows[i])


def test_goog_each_bar_starts_at_its_open_and_ends_at_its_close(goog: ReplayProvider, goog_rows: list[Row]) -> None:
    first = goog_rows[0].start_ms
    ends = [row.start_ms for row in goog_rows[1:]] + [goog.end_ms]
    for row, end in zip(goog_rows, ends, strict=True):
        opening = goog.quote_at("GOOG", (row.start_ms - first) // SPEED)
        closing = goog.quote_at("GOOG", (end - first) // SPEED - 1)  # the last wall ms of the bar
        assert opening is not None
        assert closing is not None
        assert (opening.price, opening.volume) == (row.open, 0)
        assert closing.price == row.close
        assert row.volume * 0.999 <= closing.volume <= row.volume


def test_goog_the_path_reaches_the_high_and_the_low(goog: ReplayProvider, goog_rows: list[Row]) -> None:
    first = goog_rows[0].start_ms
    for i in (0, 1, 500, 1500, 2146):
        row = goog_rows[i]
        start, end = (row.start_ms - first) // SPEED, (goog_rows[i + 1].start_ms - first) // SPEED
        prices = [q.price for ts in range(start, end, 200) if (q := goog.quote_at("GOOG", ts)) is not None]
        assert max(prices) == pytest.approx(row.high, abs=0.011)
        assert min(prices) == pytest.approx(row.low, abs=0.011)


def test_quote_at_is_the_same_in_every_process(goog: ReplayProvider, goog_rows: list[Row]) -> None:
    """A second feed process (or the one that takes over after a failover) quotes every moment alike."""
    other = ReplayProvider(load_bars(GOOG_CSV), speed=SPEED, ticks_per_second=3)  # loaded and built later
    sampler = random.Random(3)
    now = now_ms()
    for ts in [now, *(sampler.randrange(now - 10**11, now + 10**11) for _ in range(3000))]:
        assert goog.quote_at("GOOG", ts) == other.quote_at("GOOG", ts)


def test_quotes_loop_after_the_span(goog: ReplayProvider) -> None:
    period = goog.span_ms // SPEED  # wall ms to play the whole data set (~52 days)
    assert goog.span_ms % SPEED == 0
    sampler = random.Random(9)
    now = now_ms()
    for ts in [now, *(sampler.randrange(now - 10**10, now + 10**10) for _ in range(1000))]:
        quote = goog.quote_at("GOOG", ts)
        assert quote is not None
        for later in (ts + period, ts + 7 * period, ts - period):
            assert goog.quote_at("GOOG", later) == dataclasses.replace(quote, ts=later)


def test_a_faster_replay_moves_further_per_second(goog_bars: dict[str, list[Bar]]) -> None:
    fast = ReplayProvider(goog_bars, speed=86_400)  # a day per second
    assert fast.replay_time_ms(1000) - fast.replay_time_ms(0) == DAY_MS
    assert ReplayProvider(goog_bars, speed=0.5).replay_time_ms(2000) == fast.first_ms + 1000


def test_a_symbol_not_in_the_data_has_no_quote(goog: ReplayProvider) -> None:
    assert goog.quote_at("AAPL", now_ms()) is None
    assert goog.has_history is True
    assert goog.name == "replay"


# ---------------------------------------------------------------------------------------------
# Monthly closes: vega_datasets' stocks.csv ("symbol,date,price", dates like "Jan 1 2000")
# ---------------------------------------------------------------------------------------------


def test_stocks_five_symbols_load_and_each_bar_opens_at_the_previous_close() -> None:
    bars = load_bars(STOCKS_CSV)
    assert {symbol: len(series) for symbol, series in bars.items()} == {
        "MSFT": 123,
        "AMZN": 123,
        "IBM": 123,
        "GOOG": 68,
        "AAPL": 123,
    }
    assert bars["MSFT"][0] == Bar(epoch_ms(date(2000, 1, 1)), 39.81, 39.81, 39.81, 39.81, 0)
    assert bars["MSFT"][1].start_ms == epoch_ms(date(2000, 2, 1))
    assert bars["GOOG"][0].start_ms == epoch_ms(date(2004, 8, 1))
    for series in bars.values():
        assert series[0].open == series[0].close  # the first bar: flat at its close
        for previous, bar in itertools.pairwise(series):
            assert bar.open == previous.close
            assert (bar.high, bar.low) == (max(bar.open, bar.close), min(bar.open, bar.close))
            assert bar.volume == 0
            assert bar.start_ms > previous.start_ms


def test_stocks_quotes_share_one_clock_and_stay_in_range() -> None:
    bars = load_bars(STOCKS_CSV)
    provider = ReplayProvider(bars)
    sampler = random.Random(1)
    for ts in (sampler.randrange(0, 4 * 10**11) for _ in range(2000)):
        moment = provider.replay_time_ms(ts)
        for symbol, series in bars.items():
            quote = provider.quote_at(symbol, ts)
            assert quote is not None
            i = max(0, bisect.bisect_right([b.start_ms for b in series], moment) - 1)
            assert series[i].low <= quote.bid <= quote.price <= quote.ask <= series[i].high
            if moment < series[0].start_ms:  # GOOG before its first month (2004-08): flat at its first close
                assert (quote.price, quote.change) == (series[0].close, 0)


# ---------------------------------------------------------------------------------------------
# Accepted variants
# ---------------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_formats_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "prices.csv",
        "\ufeffSymbol,DateTime,OPEN,High,Low,Close,Adj Close,Volume\n"
        "brk.b,2020-01-02 09:30:00-05:00,10,11,9,10.5,10.4,100.0\n"
        "BRK.B,2020-01-02T14:31:00Z,10.5,10.5,10.25,10.25,10.2,0\n"
        "BRK.B,2020-01-02 14:32:00,10.25,10.3,10.2,10.3,10.3,7\n"
        "\n",
    )
    bars = load_bars(path)["BRK.B"]
    base = int(datetime(2020, 1, 2, 14, 30, tzinfo=UTC).timestamp()) * 1000
    assert [b.start_ms for b in bars] == [base, base + 60_000, base + 120_000]  # offsets honoured, naive = UTC
    assert [b.volume for b in bars] == [100, 0, 7]

    unnamed = write(tmp_path, "SPY.csv", ",Open,High,Low,Close\n2021-03-01,1,2,1,2\n2021-03-02,2,2,1.5,1.5\n")
    assert [(b.open, b.volume) for b in load_bars(unnamed)["SPY"]] == [(1.0, 0), (2.0, 0)]

    prices = write(tmp_path, "closes.csv", 'DATE,Price,Symbol\n"September 30, 2001",5,x\nOct 1 2001,4,x\n')
    assert load_bars(prices)["X"] == [
        Bar(epoch_ms(date(2001, 9, 30)), 5.0, 5.0, 5.0, 5.0, 0),
        Bar(epoch_ms(date(2001, 10, 1)), 5.0, 5.0, 4.0, 4.0, 0),
    ]


def test_a_folder_loads_every_csv_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "b.csv", "symbol,date,close\nAAA,2020-01-03,3\nBBB,2020-01-01,1\n")
    write(tmp_path, "a.csv", "symbol,date,close\nAAA,2020-01-01,1\nAAA,2020-01-02,2\n")
    write(tmp_path, "notes.txt", "not data")
    bars = load_bars(tmp_path)
    assert [b.close for b in bars["AAA"]] == [1.0, 2.0, 3.0]
    assert bars["AAA"][2].open == 2.0  # the previous close, from the other file
    assert len(bars["BBB"]) == 1


def test_a_folder_refuses_a_symbol_going_back_across_files(tmp_path: Path) -> None:
    shutil.copy(GOOG_CSV, tmp_path / "GOOG.csv")
    shutil.copy(STOCKS_CSV, tmp_path / "stocks.csv")  # GOOG monthly from 2004-08, after GOOG.csv's 2013
    with pytest.raises(ReplayDataError) as refused:
        load_bars(tmp_path)
    message = str(refused.value)
    assert str(tmp_path / "stocks.csv") in message
    assert "line 371:" in message  # the first GOOG row of stocks.csv
    assert "GOOG: date 'Aug 1 2004' is not after the previous bar's (2013-03-01" in message


# ---------------------------------------------------------------------------------------------
# Refused files: the file, the line and the reason
# ---------------------------------------------------------------------------------------------

OHLC = "symbol,date,open,high,low,close,volume\n"
BAD_FILES = {
    "missing close": (
        "x.csv",
        "symbol,date,open,high,low\nAAA,2020-01-02,1,2,1\n",
        1,
        "missing column: close (or price)",
    ),
    "missing high and low": ("x.csv", "symbol,date,open,close\n", 1, "missing columns: high, low"),
    "missing date": ("x.csv", "symbol,close\nAAA,1\n", 1, "missing column: date (or datetime)"),
    "two dates": ("x.csv", "symbol,date,datetime,close\n", 1, "both a date and a datetime column"),
    "close and price": ("x.csv", "symbol,date,close,price\n", 1, "both a close and a price column"),
    "duplicate column": ("x.csv", "symbol,date,close,Close\n", 1, "the column 'close' appears twice"),
    "separate time": ("x.csv", "symbol,date,time,close\n", 1, "a separate time column is not supported"),
    "bad number": (
        "x.csv",
        OHLC + "AAA,2020-01-02,1,2,1,1.5,10\nAAA,2020-01-03,1.5,abc,1,2,10\n",
        3,
        "high 'abc' is not a number",
    ),
    "infinite number": ("x.csv", OHLC + "AAA,2020-01-02,1,inf,1,1.5,1\n", 2, "high 'inf' is not a finite number"),
    "empty close": ("x.csv", "symbol,date,close\nAAA,2020-01-02,\n", 2, "close '' is not a number"),
    "zero price": (
        "x.csv",
        "symbol,date,close\nAAA,2020-01-02,1\nAAA,2020-01-03,0\n",
        3,
        "close '0' is not a positive",
    ),
    "negative open": ("x.csv", OHLC + "AAA,2020-01-02,-1,2,1,1.5,1\n", 2, "open '-1' is not a positive price"),
    "bad date": ("x.csv", OHLC + "AAA,2020-13-01,1,2,1,1.5,10\n", 2, "date '2020-13-01' is not a date"),
    "bad month name": ("x.csv", "symbol,date,price\nAAA,Foo 1 2000,1\n", 2, "date 'Foo 1 2000' is not a date"),
    "high below close": ("x.csv", OHLC + "AAA,2020-01-02,1,1.5,1,2,10\n", 2, "high 1.5 is below max(open 1, close 2)"),
    "low above open": ("x.csv", OHLC + "AAA,2020-01-02,1,3,1.2,2,10\n", 2, "low 1.2 is above min(open 1, close 2)"),
    "dates going back": (
        "x.csv",
        OHLC + "AAA,2020-01-02,1,2,1,1,0\nBBB,2020-01-01,1,2,1,1,0\nAAA,2020-01-01,1,2,1,1,0\n",
        4,
        "AAA: date '2020-01-01' is not after the previous bar's (2020-01-02T00:00:00+00:00)",
    ),
    "a date twice": (
        "x.csv",
        "symbol,date,close\nA,2020-01-02,1\nA,2020-01-02,2\n",
        3,
        "is not after the previous bar",
    ),
    "fractional volume": ("x.csv", OHLC + "AAA,2020-01-02,1,2,1,1,12.5\n", 2, "volume '12.5' is not a whole number"),
    "negative volume": ("x.csv", OHLC + "AAA,2020-01-02,1,2,1,1,-3\n", 2, "volume '-3' is not a whole number ≥ 0"),
    "short row": ("x.csv", OHLC + "AAA,2020-01-02,1,2\n", 2, "4 fields, the header has 7"),
    "empty file": ("x.csv", "", 1, "empty file: no header"),
    "header only": ("x.csv", "symbol,date,close\n", 2, "empty file: a header but no data rows"),
    "bad symbol": ("x.csv", "symbol,date,close\nAAA,2020-01-02,1\nAA PL,2020-01-02,1\n", 3, "symbol 'AA PL' is not"),
    "symbol too long": ("x.csv", "symbol,date,close\nABCDEFGHIJKLM,2020-01-02,1\n", 2, "is not a symbol"),
    "bad file name as symbol": ("my prices.csv", "date,close\n2020-01-02,1\n", 1, "the file name 'my prices' is not"),
    "not UTF-8": (
        "x.csv",
        "symbol,date,close\nAAA,2020-01-02,1\nAAA,2020-01-03,\udcff\n",
        3,
        "not UTF-8 text (byte 0xff)",
    ),
    "huge field": (
        "x.csv",
        "symbol,date,close\nAAA,2020-01-02,1" + "0" * 200_000 + "\n",
        2,
        "not valid CSV (field larger",
    ),
}


@pytest.mark.parametrize(("name", "text", "line", "reason"), list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_a_bad_file_is_refused_naming_the_file_the_line_and_the_reason(
    tmp_path: Path, name: str, text: str, line: int, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ReplayDataError) as refused:
        load_bars(path)
    message = str(refused.value)
    assert message.startswith(f"{path}, line {line}: "), message
    assert reason in message
    assert (refused.value.path, refused.value.line) == (path, line)
    assert isinstance(refused.value, ValueError)


def test_a_bad_file_in_a_folder_is_named(tmp_path: Path) -> None:
    write(tmp_path, "a.csv", "symbol,date,close\nAAA,2020-01-02,1\n")
    write(tmp_path, "b.csv", "symbol,date,close\nBBB,2020-01-02,1\nBBB,yesterday,1\n")
    with pytest.raises(ReplayDataError, match=r"b\.csv, line 3: date 'yesterday' is not a date"):
        load_bars(tmp_path)


def test_a_folder_without_csv_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "readme.txt", "nothing here")
    (tmp_path / "sub.csv").mkdir()  # a folder is not a CSV file
    with pytest.raises(ReplayDataError) as refused:
        load_bars(tmp_path)
    assert str(refused.value) == f"{tmp_path}: no CSV file (*.csv) in this folder"


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayDataError) as refused:
        load_bars(tmp_path / "nowhere.csv")
    assert str(refused.value) == f"{tmp_path / 'nowhere.csv'}: no such file or folder"


def test_from_settings(settings: Settings, tmp_path: Path) -> None:
    settings.REPLAY_PATH = ""
    with pytest.raises(ReplayDataError, match="needs REPLAY_PATH"):
        ReplayProvider.from_settings()
    settings.REPLAY_PATH = str(tmp_path / "missing")
    with pytest.raises(ReplayDataError, match="no such file or folder"):
        ReplayProvider.from_settings()
    settings.REPLAY_PATH = str(STOCKS_CSV)
    settings.REPLAY_SPEED = "fast"
    with pytest.raises(ValueError, match="REPLAY_SPEED must be a positive number"):
        ReplayProvider.from_settings()
    settings.REPLAY_SPEED = 0
    with pytest.raises(ValueError, match="REPLAY_SPEED must be a positive number"):
        ReplayProvider.from_settings()
    settings.REPLAY_SPEED = "3600"
    provider = ReplayProvider.from_settings()
    assert provider.speed == 3600.0
    assert provider.symbols == ["AAPL", "AMZN", "GOOG", "IBM", "MSFT"]
    del settings.REPLAY_SPEED
    assert ReplayProvider.from_settings().speed == 60.0


def test_the_intrabar_path() -> None:
    rising = Bar(0, open=10, high=14, low=8, close=12, volume=0)  # open → low → high → close
    falling = Bar(0, open=12, high=14, low=8, close=10, volume=0)  # open → high → low → close
    steps = [k / 1000 for k in range(1001)]
    for bar, first_extreme in ((rising, 8), (falling, 14)):
        path = [intrabar_price(bar, f) for f in steps]
        assert (path[0], path[-1]) == (bar.open, bar.close)
        assert all(bar.low <= p <= bar.high for p in path)
        assert path.index(first_extreme) < path.index(22 - first_extreme)
    # Legs take time in proportion to their length: 2 + 6 + 2 = 10, so the low at 0.2 and the high at 0.8.
    assert (intrabar_price(rising, 0.2), intrabar_price(rising, 0.8), intrabar_price(rising, 0.5)) == (8, 14, 11)
    flat = Bar(0, open=5, high=5, low=5, close=5, volume=0)
    assert intrabar_price(flat, 0.3) == 5


def test_the_provider_refuses_bad_arguments(goog_bars: dict[str, list[Bar]]) -> None:
    for speed in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            ReplayProvider(goog_bars, speed=speed)
    with pytest.raises(ValueError, match="ticks_per_second"):
        ReplayProvider(goog_bars, ticks_per_second=0)
    with pytest.raises(ValueError, match="at least one bar"):
        ReplayProvider({})


# ---------------------------------------------------------------------------------------------
# The stream
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def stocks() -> ReplayProvider:
    return ReplayProvider(load_bars(STOCKS_CSV), ticks_per_second=200)


async def batches_for(provider: ReplayProvider, seconds: float) -> list[list[Quote]]:
    """Every batch the provider's stream yields for `seconds`."""
    batches: list[list[Quote]] = []

    async def read() -> None:
        async for batch in provider.quotes():
            batches.append(batch)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read(), seconds)
    return batches


async def test_the_provider_streams_the_subscribed_symbols(stocks: ReplayProvider) -> None:
    await stocks.start()
    await stocks.subscribe(["AAPL", "MSFT"])
    batches: list[list[Quote]] = []
    stream = stocks.quotes()
    async with asyncio.timeout(5):
        async for batch in stream:
            batches.append(batch)
            if len(batches) >= 10:
                break
    await stream.aclose()  # type: ignore[attr-defined]
    quotes = [quote for batch in batches for quote in batch]
    assert {quote.symbol for quote in quotes} == {"AAPL", "MSFT"}
    for quote in quotes:
        assert quote == stocks.quote_at(quote.symbol, quote.ts)  # the quote of its moment
        assert abs(quote.ts - now_ms()) < 5000
    assert stocks.status().last_quote_ms is not None


async def test_stop_ends_the_stream(stocks: ReplayProvider) -> None:
    await stocks.start()
    await stocks.subscribe(["AAPL", "MSFT"])
    batches: list[list[Quote]] = []

    async def read() -> None:
        async for batch in stocks.quotes():
            batches.append(batch)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.2)
    await stocks.stop()
    await asyncio.wait_for(reader, 1.0)  # ends on its own
    assert batches


async def test_the_rate_is_a_total_across_symbols() -> None:
    provider = ReplayProvider(load_bars(STOCKS_CSV), ticks_per_second=20)
    await provider.start()
    await provider.subscribe(["AAPL", "MSFT", "IBM"])
    quotes = [q for batch in await batches_for(provider, 1.5) for q in batch]
    await provider.stop()
    assert 15 <= len(quotes) <= 45  # 30 expected
    counts = {symbol: sum(q.symbol == symbol for q in quotes) for symbol in ("AAPL", "MSFT", "IBM")}
    assert max(counts.values()) - min(counts.values()) <= 1  # round robin


async def test_unsubscribe_stops_a_symbol(stocks: ReplayProvider) -> None:
    await stocks.start()
    await stocks.subscribe(["AAPL", "MSFT"])
    assert {q.symbol for batch in await batches_for(stocks, 0.3) for q in batch} == {"AAPL", "MSFT"}
    await stocks.unsubscribe(["MSFT"])
    assert {q.symbol for batch in await batches_for(stocks, 0.3) for q in batch} == {"AAPL"}
    await stocks.unsubscribe(["AAPL"])
    assert await batches_for(stocks, 0.2) == []
    await stocks.stop()


async def test_an_unknown_symbol_yields_nothing(stocks: ReplayProvider) -> None:
    await stocks.start()
    await stocks.subscribe(["NOPE"])
    assert await batches_for(stocks, 0.3) == []
    assert stocks.status().unserved == {"NOPE": "unknown_symbol"}
    await stocks.subscribe(["IBM"])
    assert {q.symbol for batch in await batches_for(stocks, 0.3) for q in batch} == {"IBM"}
    await stocks.unsubscribe(["NOPE"])
    assert stocks.status().unserved == {}
    await stocks.stop()
