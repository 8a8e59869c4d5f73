"""The websocket query string is parsed once and strictly (streaming.params)."""

import pytest

from streaming.params import StreamParams, WidgetParams, id_parse, stream_params_parse
from streaming.protocol import CloseCode, Refusal


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"symbols=AAPL,MSFT", StreamParams(symbols=("AAPL", "MSFT"))),
        (b"symbols=AAPL,,%20,MSFT", StreamParams(symbols=("AAPL", "MSFT"))),
        (b"watchlist=12", StreamParams(watchlist_id=12)),
        (b"", StreamParams()),
        (b"widget=w_AAAAAAAAAAAAAAAA&token=a%3Ab", StreamParams(widget=WidgetParams("w_AAAAAAAAAAAAAAAA", "a:b"))),
    ],
)
def test_well_formed_queries_parse(query: bytes, expected: StreamParams) -> None:
    assert stream_params_parse(query) == expected


@pytest.mark.parametrize(
    ("query", "close_code", "code", "hint"),
    [
        (b"watchlist=%C2%B2", CloseCode.BAD_REQUEST, "bad_request", "watchlist id"),  # "²": isdigit() is True
        ("watchlist=²".encode(), CloseCode.BAD_REQUEST, "bad_request", "ASCII"),
        (b"watchlist=-1", CloseCode.BAD_REQUEST, "bad_request", "watchlist id"),
        (b"watchlist=1e3", CloseCode.BAD_REQUEST, "bad_request", "watchlist id"),
        (b"watchlist=", CloseCode.BAD_REQUEST, "bad_request", "watchlist id"),
        (b"watchlist=1&watchlist=2", CloseCode.BAD_REQUEST, "bad_request", "once"),
        (b"watchlist=1&symbols=AAPL", CloseCode.BAD_REQUEST, "bad_request", "not both"),
        (b"symbols=AAPL&debug=1", CloseCode.BAD_REQUEST, "bad_request", "Unknown parameter"),
        (b"watchlist=1&widget=x", CloseCode.BAD_REQUEST, "bad_request", "nothing else"),
        (b"widget=w_AAAAAAAAAAAAAAAA", CloseCode.BAD_REQUEST, "bad_request", "nothing else"),
        (b"token=abc&symbols=AAPL", CloseCode.BAD_REQUEST, "bad_request", "nothing else"),
        (b"widget=w_short&token=abc", CloseCode.BAD_REQUEST, "bad_request", "public id"),
        (b"widget=w_AAAAAAAAAAAAAAAA&token=", CloseCode.BAD_REQUEST, "bad_request", "?token="),
        (b"symbols=" + b",".join([b"A"] * 1001), CloseCode.BAD_REQUEST, "bad_request", "at most 1000"),
        (b"symbols=" + b"A" * 20_000, CloseCode.BAD_REQUEST, "bad_request", "longer than"),
    ],
)
def test_malformed_queries_are_refused_with_a_reason(query: bytes, close_code: int, code: str, hint: str) -> None:
    refusal = stream_params_parse(query)
    assert isinstance(refusal, Refusal)
    assert (refusal.close_code, refusal.code) == (close_code, code)
    assert hint in refusal.message


@pytest.mark.parametrize(
    ("raw", "expected"), [("7", 7), ("0042", 42), ("²", None), ("٣", None), ("", None), (" 1", None)]
)
def test_ids_are_ascii_digits_only(raw: str, expected: int | None) -> None:
    assert id_parse(raw) == expected
