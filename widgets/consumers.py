"""A widget viewer's websocket: the stock-market stream of one widget, for an anonymous viewer.

It shares everything with a member's stream (room, sender, release on every path) except the connect
step (token, active flag, Origin), the places it takes (`max_widget_viewers`, never `max_streams`),
and what it may ask: a widget streams its own symbols only, so `subscribe` and `unsubscribe` are
refused. An edit of the widget reaches open viewers as a control message within 2 seconds.
"""

from typing import Any

from channels.db import database_sync_to_async

from billing.limits import PlanLimits
from streaming.access import OrganisationRef
from streaming.consumers import StockMarketConsumer
from streaming.middleware import own_origin
from streaming.protocol import CloseCode, Refusal
from streaming.state import LeaseKind

from .access import WidgetAccess, WidgetView, widget_access, widget_view
from .leases import viewer_lease_prefix

FORBIDDEN_ACTION = Refusal(
    CloseCode.FORBIDDEN, "forbidden", "A widget shows the symbols its organisation chose; it cannot change them."
)


class WidgetViewerConsumer(StockMarketConsumer):
    view: WidgetView

    async def connect_check(self, organisation: OrganisationRef) -> WidgetAccess | Refusal:
        params = self.scope["stream_params"].widget
        access = await database_sync_to_async(widget_access, thread_sensitive=False)(
            organisation=organisation, params=params, origin=self.scope["origin"], own_origin=own_origin(self.scope)
        )
        if not isinstance(access, Refusal):
            self.view = access.view
            self.watchlist_id = access.view.watchlist_id
            self.max_per_second = access.view.max_per_second or 0
        return access

    def lease_terms(self, limits: PlanLimits) -> tuple[LeaseKind, int]:
        return LeaseKind.WIDGET, limits.max_widget_viewers

    def lease_prefix(self) -> str:
        return viewer_lease_prefix(self.view.widget_id)

    def lease_refusal(self, limits: PlanLimits) -> Refusal:
        return Refusal(
            CloseCode.LIMIT,
            "stream_limit",
            f"This widget's organisation already has {limits.max_widget_viewers} widget viewers, the most its "
            "plan allows. Try again later.",
            {"limits": {"max_widget_viewers": limits.max_widget_viewers}},
        )

    def snapshot_extra(self) -> dict[str, Any]:
        return {"widget": self.view.config()}

    # -- what a viewer may not do ----------------------------------------------------------------
    async def subscribe(self, raw: list[Any]) -> None:
        self.reply(FORBIDDEN_ACTION.message_dict())

    def unsubscribe(self, raw: list[Any]) -> None:
        self.reply(FORBIDDEN_ACTION.message_dict())

    # -- the widget changed ------------------------------------------------------------------------
    async def control_apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "widget.changed":
            if event.get("widget_id") == self.view.widget_id:
                await self.widget_changed()
            return
        if kind == "alert.fired":  # an organisation's alerts are for its members, not its sites' visitors
            return
        await super().control_apply(event)

    async def widget_changed(self) -> None:
        """Revoked, deleted, or no longer allowed on this site: close 4403. Otherwise show the new widget."""
        view = await database_sync_to_async(widget_view, thread_sensitive=False)(
            schema_name=self.schema,
            limits=self.subscription.limits,
            origin=self.scope["origin"],
            own_origin=own_origin(self.scope),
            widget_id=self.view.widget_id,
        )
        if self.released:
            return
        if isinstance(view, Refusal):
            await self.close_with(view)
            return
        if view.config() != self.view.config():
            self.reply({"type": "widget", "widget": view.config()})
        self.view, self.watchlist_id = view, view.watchlist_id
        self.sender.throttle(view.max_per_second or 0)
        await self.symbols_replace(view.symbols, view.rejected, reason="widget", why="The widget was edited.")
