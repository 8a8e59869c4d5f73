"""The symbol arithmetic of one connection (streaming.subscription): plain rules, no I/O."""

from billing.limits import PlanLimits
from streaming.subscription import Subscription
from symbols.selectors import Rejection


def limits(max_symbols: int) -> PlanLimits:
    return PlanLimits(
        plan_name="Test", max_symbols=max_symbols, max_streams=2, max_watchlists=1, max_widgets=0,
        max_widget_viewers=0, realtime=True, delay_minutes=0,
    )  # fmt: skip


def test_add_follows_what_fits_and_refuses_the_rest_as_symbol_limit() -> None:
    subscription = Subscription(["AAPL", "MSFT"], limits(4))
    change = subscription.add(["MSFT", "AMZN", "AMZN", "NVDA", "TSLA"])
    assert change.added == ["AMZN", "NVDA"]
    assert change.rejected == [Rejection("TSLA", "symbol_limit")]
    assert subscription.list() == ["AAPL", "MSFT", "AMZN", "NVDA"]


def test_remove_takes_any_case_and_ignores_what_is_not_followed() -> None:
    subscription = Subscription(["AAPL", "MSFT"], limits(5))
    assert subscription.remove([" msft ", "NOPE", 7]).removed == ["MSFT"]
    assert subscription.list() == ["AAPL"]


def test_a_lower_limit_stops_the_last_symbols() -> None:
    subscription = Subscription(["AAPL", "MSFT", "AMZN"], limits(5))
    assert subscription.limit(limits(2)).removed == ["AMZN"]
    assert subscription.list() == ["AAPL", "MSFT"]
    assert subscription.limit(limits(10)).removed == []
    assert subscription.add(["NVDA"]).added == ["NVDA"]


def test_replace_follows_an_edited_watchlist_in_its_order_within_the_plan() -> None:
    subscription = Subscription(["AAPL", "MSFT", "AMZN"], limits(3))
    change = subscription.replace(["NVDA", "AAPL", "TSLA", "GOOGL"])
    assert change.added == ["NVDA", "TSLA"]
    assert change.removed == ["MSFT", "AMZN"]
    assert change.rejected == [Rejection("GOOGL", "symbol_limit")]
    assert subscription.list() == ["NVDA", "AAPL", "TSLA"]


def test_replace_with_nothing_stops_everything() -> None:
    subscription = Subscription(["AAPL"], limits(3))
    assert subscription.replace([]).removed == ["AAPL"]
    assert len(subscription) == 0
