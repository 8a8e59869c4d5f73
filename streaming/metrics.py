"""What a web process counts about its streams, for `/metrics`.

The hot path (every quote offered, every frame sent) only adds to plain integers of `STREAM_COUNTS`:
an increment costs about 60 ns, where a prometheus_client Counter takes a lock (about 500 ns) and a
Histogram observation about 1.1 µs. `StreamCollector` turns them into Prometheus families when
scraped, with what the hub holds at that moment (connections per organisation).

Delivery latency is measured from the feed's publication of a batch (its wall clock, carried in the
batch) to the frame that carries its oldest quote being handed to the socket: the channel layer, the
room's fan-out, the wait for the frame tick and the send. Hosts keep their clocks in step (NTP).
Throttled connections are left out: their quotes wait on purpose.
"""

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

if TYPE_CHECKING:
    from .hub import StreamHub

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StreamCounts:
    """Totals since the process started; only ever incremented, on the event loop."""

    __slots__ = ("accepted", "closes", "conflated", "dropped", "frames_out", "latency", "latency_sum",
                 "quotes_in", "quotes_out", "refusals")  # fmt: skip

    def __init__(self) -> None:
        self.quotes_in = 0  # quotes received by this process's rooms (one per organisation and quote)
        self.frames_out = 0  # websocket frames sent: quote frames and protocol messages
        self.quotes_out = 0  # quotes inside those frames
        self.conflated = 0  # quotes replaced by a newer one of their symbol before they left
        self.dropped = 0  # quotes that never left: their connection closed, or stopped following the symbol
        self.accepted = 0  # connections that passed the connect step
        self.refusals: Counter[int] = Counter()  # connections refused in the connect step, by close code
        self.closes: Counter[int] = Counter()  # accepted connections the server closed, by close code
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket (not cumulative); the last is +Inf
        self.latency_sum = 0.0

    def latency_observe(self, seconds: float) -> None:
        self.latency[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds


STREAM_COUNTS = StreamCounts()


class StreamCollector:
    """The process's stream figures as Prometheus families (read on the hub's event loop)."""

    def __init__(self, hub: "StreamHub | None", counts: StreamCounts = STREAM_COUNTS) -> None:
        self.hub = hub
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        yield _counter("tickerdeck_stream_quotes_in", "Quotes received by this process's organisation rooms.",
                       counts.quotes_in)  # fmt: skip
        yield _counter("tickerdeck_stream_frames_out", "Websocket frames sent (quote frames and messages).",
                       counts.frames_out)  # fmt: skip
        yield _counter("tickerdeck_stream_quotes_out", "Quotes sent inside frames.", counts.quotes_out)
        yield _counter("tickerdeck_stream_quotes_conflated",
                       "Quotes replaced by a newer quote of their symbol before they were sent.",
                       counts.conflated)  # fmt: skip
        yield _counter("tickerdeck_stream_quotes_dropped",
                       "Quotes never sent: their connection closed or stopped following the symbol.",
                       counts.dropped)  # fmt: skip
        yield _counter("tickerdeck_stream_connects_accepted", "Connections that passed the connect step.",
                       counts.accepted)  # fmt: skip
        yield _by_code("tickerdeck_stream_refusals", "Connections refused in the connect step, by close code.",
                       counts.refusals)  # fmt: skip
        yield _by_code("tickerdeck_stream_closes", "Accepted connections closed by the server, by close code.",
                       counts.closes)  # fmt: skip
        yield self._latency()
        yield self._connections()

    def _latency(self) -> Metric:
        family = HistogramMetricFamily(
            "tickerdeck_stream_delivery_latency_seconds",
            "From the feed publishing a quote to the frame carrying it being sent (unthrottled connections).",
        )
        cumulative, total = [], 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.counts.latency, strict=True):
            total += count
            cumulative.append((_bucket_label(bound), total))
        family.add_metric([], cumulative, sum_value=self.counts.latency_sum)
        return family

    def _connections(self) -> Metric:
        family = GaugeMetricFamily(
            "tickerdeck_stream_connections",
            "Open connections in this process, per organisation (schema) and kind (streams, widgets).",
            labels=["organisation", "kind"],
        )
        per_room: Counter[tuple[str, str]] = Counter()
        for room in list(self.hub.rooms.values()) if self.hub is not None else ():
            for connection in list(room.connections):
                kind = connection.lease[0].value if connection.lease is not None else "streams"
                per_room[room.schema, kind] += 1
        for (schema, kind), count in sorted(per_room.items()):
            family.add_metric([schema, kind], count)
        return family


def _counter(name: str, documentation: str, value: float) -> Metric:
    return CounterMetricFamily(name, documentation, value=value)


def _by_code(name: str, documentation: str, counts: Counter[int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=["code"])
    for code, count in sorted(counts.items()):
        family.add_metric([str(code)], count)
    return family


def _bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class FeedCollector:
    """The feed leader's status (stored in Redis each second) as Prometheus families.

    Every web process reads the same status, so each exports the same feed figures; the feed's totals
    start again from zero when another process takes the lead (Prometheus' counters allow resets).
    """

    COUNTS = {
        "received": ("tickerdeck_feed_quotes_received", "Quotes the market-data provider gave the feed leader."),
        "published": (
            "tickerdeck_feed_quotes_published",
            "Quotes the feed leader sent to organisations.",
        ),
        "reconnects": ("tickerdeck_feed_reconnects", "Times the feed leader's provider reconnected to its source."),
        "alerts_fired": ("tickerdeck_alerts_fired", "Alert events written by the feed leader's alert engine."),
        "alert_webhooks_sent": ("tickerdeck_alert_webhooks_sent", "Alert webhook attempts posted (any outcome)."),
        "alert_webhooks_failed": ("tickerdeck_alert_webhooks_failed", "Alert webhook attempts without a 2xx answer."),
    }

    def __init__(self, status: dict[str, Any] | None, now: float) -> None:
        self.status = status
        self.now = now

    def collect(self) -> Iterator[Metric]:
        status = self.status or {}
        provider = str(status.get("provider") or "")
        up = GaugeMetricFamily("tickerdeck_feed_up", "1 while a feed leader reports its status.", labels=["provider"])
        up.add_metric([provider], 1 if status else 0)
        yield up
        if not status:
            return
        yield GaugeMetricFamily("tickerdeck_feed_connected", "1 while the leader's provider has its source.",
                                value=1 if status.get("connected") else 0)  # fmt: skip
        yield GaugeMetricFamily("tickerdeck_feed_status_age_seconds", "Since the leader last stored its status.",
                                value=self._age(status.get("stored_ms")))  # fmt: skip
        if status.get("last_quote_ms"):
            yield GaugeMetricFamily("tickerdeck_feed_lag_seconds", "Since the leader last received a quote.",
                                    value=self._age(status.get("last_quote_ms")))  # fmt: skip
        yield GaugeMetricFamily("tickerdeck_feed_symbols", "Symbols the feed quotes (watched by someone).",
                                value=int(status.get("symbols") or 0))  # fmt: skip
        yield GaugeMetricFamily("tickerdeck_feed_unserved_symbols", "Watched symbols the data source does not serve.",
                                value=len(status.get("unserved") or {}))  # fmt: skip
        totals = {**status, **(status.get("counts") or {})}
        for key, (name, documentation) in self.COUNTS.items():
            if key in totals:
                yield _counter(name, documentation, int(totals[key] or 0))

    def _age(self, ms: Any) -> float:
        return max(0.0, self.now - int(ms or 0) / 1000)
