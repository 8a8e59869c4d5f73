"""Websocket routes."""

from django.urls import path

from .consumers import StockMarketConsumer

websocket_urlpatterns = [
    path("ws/stock-market/", StockMarketConsumer.as_asgi()),
]
