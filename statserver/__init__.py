"""statserver: Knative Serving's autoscaler stats server, on Twisted.

Importing this package imports nothing from Twisted or autobahn (``statserver.gob``
must stay usable on its own); ``StatsServer`` is loaded on first use.
"""

from statserver.model import StatMessage

__version__ = "0.2.0"

# What the server calls itself in HTTP `Server:` headers and the WebSocket handshake.
SERVER_NAME = f"statserver/{__version__}"

__all__ = ["SERVER_NAME", "StatMessage", "StatsServer", "__version__"]


def __getattr__(name):
    if name == "StatsServer":
        from statserver.server.service import StatsServer

        return StatsServer
    raise AttributeError(f"module 'statserver' has no attribute {name!r}")
