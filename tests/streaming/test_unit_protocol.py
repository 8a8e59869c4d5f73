"""protocol.action_parse: the three client actions, and a helpful ProtocolError for everything else."""

from typing import Any

import pytest

from streaming.protocol import (
    ACTIONS,
    MAX_SYMBOLS_PER_MESSAGE,
    SLOW_CONSUMER,
    ClientAction,
    CloseCode,
    ProtocolError,
    Refusal,
    action_parse,
)


def test_ping() -> None:
    assert action_parse({"action": "ping"}) == ClientAction("ping", [])
    assert action_parse({"action": "ping", "symbols": ["AAPL"]}) == ClientAction("ping", [])


@pytest.mark.parametrize("action", ["subscribe", "unsubscribe"])
def test_subscribe_and_unsubscribe(action: str) -> None:
    assert action_parse({"action": action, "symbols": ["AAPL", "msft"]}) == ClientAction(action, ["AAPL", "msft"])
    many = [f"S{i}" for i in range(MAX_SYMBOLS_PER_MESSAGE)]
    assert action_parse({"action": action, "symbols": many}).symbols == many


@pytest.mark.parametrize("content", [None, "ping", 5, ["ping"], b'{"action":"ping"}', True])
def test_a_non_object_is_refused(content: Any) -> None:
    with pytest.raises(ProtocolError, match="JSON object") as error:
        action_parse(content)
    assert '{"action": "ping"}' in str(error.value)


@pytest.mark.parametrize("action", [None, "", "PING", "Subscribe", "delete", 1, ["ping"]])
def test_an_unknown_action_is_refused_naming_the_valid_ones(action: Any) -> None:
    content = {} if action is None else {"action": action}
    with pytest.raises(ProtocolError, match="Unknown action") as error:
        action_parse(content)
    assert all(name in str(error.value) for name in ACTIONS)


def test_an_unknown_action_is_echoed_only_briefly() -> None:
    with pytest.raises(ProtocolError) as error:
        action_parse({"action": "x" * 10_000})
    assert len(str(error.value)) < 200


@pytest.mark.parametrize("action", ["subscribe", "unsubscribe"])
@pytest.mark.parametrize(
    "content",
    [{}, {"symbols": None}, {"symbols": []}, {"symbols": "AAPL"}, {"symbols": {"AAPL": 1}}, {"symbols": 5}],
    ids=["missing", "null", "empty", "string", "object", "number"],
)
def test_symbols_must_be_a_non_empty_list(action: str, content: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError, match="non-empty list of symbols") as error:
        action_parse({"action": action, **content})
    assert action in str(error.value)
    assert '["AAPL"]' in str(error.value)


def test_more_than_the_maximum_symbols_is_refused() -> None:
    with pytest.raises(ProtocolError, match=f"At most {MAX_SYMBOLS_PER_MESSAGE} symbols"):
        action_parse({"action": "subscribe", "symbols": ["AAPL"] * (MAX_SYMBOLS_PER_MESSAGE + 1)})


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)


def test_refusal_message_dict() -> None:
    assert SLOW_CONSUMER.close_code is CloseCode.SLOW_CONSUMER
    assert int(SLOW_CONSUMER.close_code) == 4408
    assert SLOW_CONSUMER.message_dict() == {"type": "error", "code": "slow_consumer", "message": SLOW_CONSUMER.message}
    refusal = Refusal(CloseCode.LIMIT, "stream_limit", "Too many.", {"limits": {"max_streams": 2}})
    assert refusal.message_dict() == {
        "type": "error",
        "code": "stream_limit",
        "message": "Too many.",
        "limits": {"max_streams": 2},
    }


@pytest.mark.parametrize("rate", [1, 25, 50])
def test_throttle_takes_1_to_50_updates_a_second(rate: int) -> None:
    assert action_parse({"action": "throttle", "max_per_second": rate}).max_per_second == rate


@pytest.mark.parametrize("rate", [0, 51, -1, 2.5, "5", True, None])
def test_throttle_refuses_anything_else_with_the_range(rate: object) -> None:
    with pytest.raises(ProtocolError, match="from 1 to 50"):
        action_parse({"action": "throttle", "max_per_second": rate})
