"""statserver: Knative Serving's autoscaler stats server, on Twisted.

Importing this package imports nothing from Twisted or autobahn (``statserver.gob``
must stay usable on its own); ``StatsServer`` is loaded on first use.
"""

from statserver.model import StatMessage

__all__ = ["StatMessage", "StatsServer"]


def __getattr__(name):
    if name == "StatsServer":
        from statserver.server import StatsServer

        return StatsServer
    raise AttributeError(f"module 'statserver' has no attribute {name!r}")
