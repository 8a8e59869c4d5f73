"""Websocket routes: one endpoint, a member's stream or a widget viewer by the query string (SPEC)."""

from typing import Any

from django.urls import path

from widgets.consumers import WidgetViewerConsumer

from .consumers import StockMarketConsumer

member_stream = StockMarketConsumer.as_asgi()
widget_stream = WidgetViewerConsumer.as_asgi()


async def stock_market(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`?widget=…&token=…` is a widget viewer; anything else a signed-in member's stream."""
    app = widget_stream if scope["stream_params"].widget is not None else member_stream
    await app(scope, receive, send)


websocket_urlpatterns = [
    path("ws/stock-market/", stock_market),  # type: ignore[arg-type]  # an ASGI app: Channels' URLRouter takes it
]
