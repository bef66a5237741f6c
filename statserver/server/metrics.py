"""The server's Prometheus metrics, in a registry of its own."""

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from statserver import __version__
from statserver.constants import FORMATS

__all__ = ["CONTENT_TYPE_LATEST", "FormatCounts", "ServerMetrics", "render"]


class FormatCounts:
    """A counter by wire format, kept in ``counts`` (a dict of plain ints, one key per
    format) and turned into a Prometheus counter when scraped.

    The frame path adds to two of these for every frame; a ``prometheus_client``
    ``Counter`` would take a lock for each, a few per cent of a small frame's cost.
    """

    def __init__(self, name, documentation, registry):
        self.name = name
        self.documentation = documentation
        self.counts = dict.fromkeys(FORMATS, 0)
        self._created = time.time()
        registry.register(self)

    def value(self, fmt):
        """The count of ``fmt`` so far."""
        return self.counts[fmt]

    def describe(self):
        return [CounterMetricFamily(self.name, self.documentation, labels=["format"])]

    def collect(self):
        family = CounterMetricFamily(self.name, self.documentation, labels=["format"])
        for fmt, count in self.counts.items():
            family.add_metric([fmt], count, created=self._created)
        return [family]


class ServerMetrics:
    """Counters and gauges of one ``StatsServer``; the format-labelled counters start at
    0 for every format so that they show up before the first frame."""

    def __init__(self, registry=None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # the standard process_* (open fds, memory, CPU) and python_info series, as on
        # prometheus_client's default registry, which the server does not use
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Info(
            "statserver_build",
            "statserver's version, and its implementation: compiled (statserver._speedups "
            "in use) or pure (Python only)",
            registry=r,
        )
        from statserver.wire import IMPLEMENTATION  # here: importing metrics builds no descriptors

        self.build_info.info({"version": __version__, "implementation": IMPLEMENTATION})
        self.stats_received = FormatCounts(
            "statserver_stats_received", "Stats put on the queue, by wire format", r
        )
        self.frames = FormatCounts(
            "statserver_frames", "WebSocket data frames received, by wire format", r
        )
        self.decode_errors = Counter(
            "statserver_decode_errors",
            "Frames that failed to decode, by wire format",
            ["format"],
            registry=r,
        )
        for fmt in FORMATS:
            self.decode_errors.labels(fmt)
        self.connections = Gauge("statserver_connections", "Open WebSocket connections", registry=r)
        self.connections_opened = Counter(
            "statserver_connections_opened", "WebSocket connections accepted", registry=r
        )
        self.queue_depth = Gauge(
            "statserver_queue_depth", "Stats waiting for the consumer", registry=r
        )
        self.backpressure_pauses = Counter(
            "statserver_backpressure_pauses",
            "Times the server stopped reading because the queue was full",
            registry=r,
        )
        self.paused = Gauge(
            "statserver_backpressure_paused",
            "1 while reading is paused because the queue is full",
            registry=r,
        )
        self.frames_held = Gauge(
            "statserver_frames_held",
            "Frames read just before a pause, kept undecoded until the queue has room",
            registry=r,
        )
        self.oversize_closes = Counter(
            "statserver_oversize_closes",
            "Connections closed with 1009 for a message over the size limit",
            registry=r,
        )
        self.bucket_refusals = Counter(
            "statserver_bucket_refusals",
            "WebSocket requests refused for a bucket this process does not own",
            registry=r,
        )
        self.frames_after_shutdown = Counter(
            "statserver_frames_after_shutdown",
            "Data frames received after the server sent close 1012 (delivered as any other)",
            registry=r,
        )
        self.connections_refused = Counter(
            "statserver_connections_refused",
            "Connections refused or closed by a limit, by reason",
            ["reason"],
            registry=r,
        )


def render(registry):
    """The text exposition of a registry (call it in the reactor thread)."""
    return generate_latest(registry)
