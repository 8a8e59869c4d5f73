"""Fuzzing what only a real server sees: binary frames, text frames that are not UTF-8, frames of up to 1 MB.

Against uvicorn (config.server) and a feed process: a binary frame is SPEC's bad_request and the
stream goes on; a text frame that is not UTF-8 is closed 1007 and one past the 64 KB frame limit
1009 by the websocket layer itself, before any of our code (both "not retry unchanged", like 4400).
Organisation B's stream keeps receiving quotes throughout, a new connection is served after each
case, and the server prints no ERROR and no traceback. A few dozen cases (a hundred and more in
`make fuzz`): each is a real connection; the in-process fuzzing covers the frames' content.
"""

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from streaming.protocol import MAX_FRAME_BYTES
from tests.live import FeedProcess, LiveServer
from tests.security.fuzz import Cases, fuzz_examples, fuzz_settings, fuzz_target
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.conftest import committed as committed  # a fixture
from tests.streaming.live_support import recv_json, recv_until, ws_connect

pytestmark = pytest.mark.live

db, feed, web = live_support.db, live_support.feed, live_support.web

LIVE_EXAMPLES = min(max(fuzz_examples() // 50, 20), 200)  # 20 in `make test`, 200 in `make fuzz`
INVALID_DATA, MESSAGE_TOO_BIG = 1007, 1009  # RFC 6455 close codes the websocket layer sends
RESET = "closed without a close frame"
WAIT = 15.0  # seconds before a missing answer counts as a hang (2 shared cores under load)


def not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# (payload, sent as text?, what it gets: "bad_request" or a close code)
Case = tuple[bytes, bool, int | str]
CASES = st.one_of(
    st.binary(min_size=1, max_size=2_000).map(lambda data: (data, False, "bad_request")),
    st.binary(min_size=1, max_size=200).filter(not_utf8).map(lambda data: (data, True, INVALID_DATA)),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=20).map(
        lambda text: (text.encode("utf-8", "surrogatepass"), True, INVALID_DATA)  # lone surrogates, as CESU would
    ),
    st.tuples(st.integers(min_value=MAX_FRAME_BYTES + 1, max_value=1_048_576), st.booleans()).map(
        lambda size_text: (b"x" * size_text[0], size_text[1], MESSAGE_TOO_BIG)
    ),
)


@pytest.fixture
async def tenants(committed: Committed) -> tuple[Tenant, Tenant]:
    return await committed.tenant("pro"), await committed.tenant("pro")


@pytest.fixture
async def bystander(web: LiveServer, feed: FeedProcess, tenants: tuple[Tenant, Tenant]) -> AsyncIterator[Any]:
    """Organisation B's dashboard on the same server, streaming through the whole run."""
    b = tenants[1]
    async with ws_connect(web, b.host, b.session, "symbols=AAPL,MSFT") as ws:
        assert (await recv_json(ws, WAIT))["type"] == "snapshot"
        yield ws


@pytest.fixture(scope="module")
def live_cases() -> Iterator[Cases]:
    with fuzz_target("websocket transport (uvicorn: binary, not UTF-8, up to 1 MB)") as cases:
        yield cases


async def answer_to(ws: ClientConnection, payload: bytes, text: bool) -> int | str:
    """Send one frame, then a ping: the error code it got (the pong came after), or the close code."""
    await ws.send(payload, text=text)
    await ws.send('{"action":"ping"}')
    replies: list[dict[str, Any]] = []
    try:
        while (message := await recv_json(ws, WAIT))["type"] != "pong":
            if message["type"] not in ("quotes", "market", "unserved"):
                replies.append(message)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else RESET
    assert len(replies) == 1, replies
    assert replies[0]["type"] == "error"
    assert replies[0]["message"]
    return str(replies[0]["code"])


@fuzz_settings(examples=LIVE_EXAMPLES)
@given(case=CASES)
@example(case=(b"\xff" * 1_048_576, False, MESSAGE_TOO_BIG))
@example(case=(b"\xed\xa0\x80", True, INVALID_DATA))  # U+D800 as UTF-8 would write it
async def test_fuzz_websocket_transport(
    web: LiveServer, tenants: tuple[Tenant, Tenant], bystander: ClientConnection, case: Case, live_cases: Cases
) -> None:
    payload, text, expected = case
    a = tenants[0]
    async with ws_connect(web, a.host, a.session, "symbols=AAPL", max_size=None) as ws:
        assert (await recv_json(ws, WAIT))["type"] == "snapshot"
        answer = await answer_to(ws, payload, text)
    # Past the limit, the server closes 1009 while the client may still be writing the frame: a socket
    # closed with unread data is reset, and the reset can overtake the close frame.
    assert answer in ({expected, RESET} if expected == MESSAGE_TOO_BIG else {expected}), (len(payload), text, answer)
    async with ws_connect(web, a.host, a.session, "symbols=MSFT") as again:  # the server takes new connections
        assert (await recv_json(again, WAIT))["type"] == "snapshot"
    assert (await recv_until(bystander, "quotes", WAIT))["quotes"]  # and goes on serving the other organisation
    assert web.output is not None
    problems = [line for line in web.output.lines if re.search(r"\bERROR\b|Traceback", line)]
    assert not problems, problems
    live_cases.count(f"{'text' if text else 'binary'} {answer}")
