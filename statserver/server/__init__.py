"""The receiving side: a WebSocket connection's frames → admitted ``StatMessage``s on
``StatsServer.stats`` (a ``DeferredQueue``).

- ``service``: ``StatsServer``, the Twisted service that owns the connections, decodes
  their frames (``statserver.wire``), admits the stats and queues them, and shuts down
  as Knative's server does;
- ``protocol``: the autobahn protocol of one sender connection;
- ``admission``: which decoded stats are handed on;
- ``connections``: what is known of each open connection (for the API and dashboard);
- ``resources``: the ``twisted.web`` tree (WebSocket entry, probes, healthz, metrics),
  ``channel``: the HTTP side's limits, ``render``: big bodies rendered in slices;
- ``metrics``: the server's Prometheus metrics, ``lag``: the reactor's lateness.
"""

__all__ = ["StatsServer"]


def __getattr__(name):
    # StatsServer on first use: importing one module of this package (metrics, say)
    # does not import them all
    if name == "StatsServer":
        from statserver.server.service import StatsServer

        return StatsServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
