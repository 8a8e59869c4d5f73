"""A watchlist's minute bars as CSV (`/watchlists/<id>/export.csv?day=`), streamed through the ASGI stack."""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator
from django.http import StreamingHttpResponse

from config.asgi import application
from streaming.bars import bars_from_history
from streaming.providers import SimulatedProvider
from streaming.state import BARS_KEPT, MINUTE_MS, Bar, stream_state
from tests.conftest import host_client
from tests.streaming import conftest as streaming_fixtures
from tests.streaming.conftest import Committed, Tenant
from tests.watchlists.conftest import inside
from watchlists.models import Watchlist
from watchlists.services import watchlist_create

pytestmark = [pytest.mark.asyncio]

committed = streaming_fixtures.committed  # rows the server's threads can see (pytest finds fixtures in globals)

COLUMNS = ["symbol", "minute", "open", "high", "low", "close", "volume"]
PROVIDER = SimulatedProvider(seed=11)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    chunks: list[bytes]  # the body as the ASGI application sent it, message by message

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()

    @property
    def rows(self) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.text)))


async def get(tenant: Tenant, path: str, session: str | None = None) -> Answer:
    """GET through the whole ASGI application, as uvicorn serves it, signed in (the owner by default)."""
    path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "server": (tenant.host, 80), "client": ("127.0.0.1", 50000),
        "headers": [(b"host", tenant.host.encode()), (b"cookie", f"sessionid={session or tenant.session}".encode())],
    }  # fmt: skip
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await app.receive_output(10)
    chunks = []
    while True:
        message = await app.receive_output(10)
        assert message["type"] == "http.response.body", message
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await app.wait(10)
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return Answer(start["status"], headers, chunks)


async def watchlist(tenant: Tenant, name: str, symbols: list[str]) -> Watchlist:
    def create() -> Watchlist:
        with inside(tenant.organisation):
            return watchlist_create(organisation=tenant.organisation, name=name, symbols=symbols)

    return await sync_to_async(create)()


async def bars_stored(symbols: list[str], *, until: int, count: int = BARS_KEPT) -> dict[str, list[Bar]]:
    """`count` minutes of bars before `until` per symbol, from the simulated path, stored as the feed does."""
    bars = {symbol: bars_from_history(PROVIDER, symbol, until=until, count=count) for symbol in symbols}
    await stream_state().bars_replace(bars)
    return bars


async def export(tenant: Tenant, watchlist_id: int, query: str = "", session: str | None = None) -> Answer:
    return await get(tenant, f"/watchlists/{watchlist_id}/export.csv{query}", session)


def minute_ms(day: date, hour: int, minute: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_390_minute_day_exports_as_ordered_csv_rows_symbol_by_symbol(committed: Committed) -> None:
    tenant = await committed.tenant("pro")
    symbols = ["PEP", "KO", "MCD"]  # the watchlist's order, not the alphabet's
    listed = await watchlist(tenant, "Staples: Dow & Co/Énergie", symbols)
    day = datetime.now(UTC).date() - timedelta(days=1)
    stored = await bars_stored(symbols, until=minute_ms(day, 20, 0))  # the session, 13:30 to 20:00 UTC

    answer = await export(tenant, listed.pk, f"?day={day.isoformat()}")

    assert answer.status == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == f'attachment; filename="Staples-Dow-Co-Energie-{day}.csv"'
    rows = answer.rows
    assert rows[0] == COLUMNS
    assert len(rows) == 1 + 390 * len(symbols)
    assert [row[0] for row in rows[1:]] == [symbol for symbol in symbols for _ in range(390)]
    first = minute_ms(day, 13, 30)
    for i, symbol in enumerate(symbols):
        block = rows[1 + i * 390 : 1 + (i + 1) * 390]
        assert [row[1] for row in block] == [iso(first + k * MINUTE_MS) for k in range(390)]
        parsed = [Bar(first + k * MINUTE_MS, *map(float, row[2:6]), int(row[6])) for k, row in enumerate(block)]  # type: ignore[call-arg, arg-type]
        assert parsed == stored[symbol]
        assert all(bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high for bar in parsed)
        assert all(bar.volume >= 0 for bar in parsed)


async def test_the_export_is_streamed_in_pieces_never_as_one_body(committed: Committed) -> None:
    tenant = await committed.tenant("pro")
    listed = await watchlist(tenant, "Mine", ["KO", "PEP"])
    day = datetime.now(UTC).date() - timedelta(days=1)
    await bars_stored(["KO", "PEP"], until=minute_ms(day, 20, 0))

    answer = await export(tenant, listed.pk, f"?day={day}")
    assert "content-length" not in answer.headers  # the size is not known beforehand: nothing was built whole
    assert len([chunk for chunk in answer.chunks if chunk]) >= 780 // 100  # rows leave as they are made

    def through_django() -> StreamingHttpResponse:
        client = host_client(tenant.host)
        client.cookies["sessionid"] = tenant.session
        return client.get(f"/watchlists/{listed.pk}/export.csv?day={day}")  # type: ignore[return-value]

    response = await sync_to_async(through_django)()
    assert response.streaming is True
    assert response.is_async  # which the ASGI handler streams (a synchronous iterator it would read whole first)


async def test_a_delayed_plan_exports_only_minutes_that_ended_its_delay_ago(committed: Committed) -> None:
    free, pro = await committed.tenant("free"), await committed.tenant("pro")  # 15 minutes delayed; realtime
    member = await committed.member(free, "member@export.example")  # any member may export
    now = datetime.now(UTC)
    current_minute = int(now.timestamp() * 1000) // MINUTE_MS * MINUTE_MS
    await bars_stored(["KO"], until=current_minute, count=60)  # the last hour, up to the minute being built
    day = (now - timedelta(minutes=10)).date()  # a day with minutes on both sides of a 15-minute cut
    query = f"?day={day.isoformat()}"
    free_list, pro_list = await watchlist(free, "Mine", ["KO"]), await watchlist(pro, "Mine", ["KO"])

    before = int(datetime.now(UTC).timestamp() * 1000)
    delayed = (await export(free, free_list.pk, query, session=member)).rows
    realtime = (await export(pro, pro_list.pk, query)).rows
    after = int(datetime.now(UTC).timestamp() * 1000)

    def minutes(rows: list[list[str]]) -> list[int]:
        return [int(datetime.fromisoformat(row[1]).timestamp() * 1000) for row in rows[1:]]

    def visible(at: int, delay_minutes: int) -> set[int]:
        """The stored minutes of the day that ended at least the delay before `at` (just after midnight, the
        stored hour reaches into the next day, which is not the day exported)."""
        day_start = minute_ms(day, 0, 0)
        day_end = day_start + 24 * 60 * MINUTE_MS
        stored = range(current_minute - 60 * MINUTE_MS, current_minute, MINUTE_MS)
        return {m for m in stored if day_start <= m < day_end and m + MINUTE_MS <= at - delay_minutes * MINUTE_MS}

    assert delayed[0] == realtime[0] == COLUMNS
    assert minutes(delayed) == sorted(minutes(delayed))
    assert visible(before, 15) <= set(minutes(delayed)) <= visible(after, 15)
    assert visible(before, 0) <= set(minutes(realtime)) <= visible(after, 0)
    assert len(realtime) > len(delayed)  # the realtime plan has the last quarter of an hour too


async def test_another_organisations_watchlist_is_not_found_and_a_bad_day_is_refused(committed: Committed) -> None:
    ours, theirs = await committed.tenant("pro"), await committed.tenant("pro")
    await watchlist(theirs, "First", ["KO"])
    hidden = await watchlist(theirs, "Second", ["PEP"])  # an id our schema does not have
    mine = await watchlist(ours, "Mine", ["KO"])

    assert (await export(ours, hidden.pk)).status == 404
    for bad in ("yesterday", "2025-02-30", "20250314", "2025-3-14"):
        refused = await export(ours, mine.pk, f"?day={bad}")
        assert refused.status == 400
        assert "YYYY-MM-DD" in refused.text
    # No day: today (UTC), in the file's name too.
    today = await export(ours, mine.pk)
    assert today.status == 200
    assert f'filename="Mine-{datetime.now(UTC).date()}.csv"' in today.headers["content-disposition"]
    assert today.rows[0] == COLUMNS
    # The watchlist's page links to it.
    page = (await get(ours, f"/watchlists/{mine.pk}/")).text
    assert f'href="/watchlists/{mine.pk}/export.csv"' in page
    assert "Export minute bars (CSV)" in page
