"""Test helpers: a StatsServer on 127.0.0.1:0, autobahn's Twisted client, plain HTTP.

Every helper that waits returns a Deferred bounded by a timeout.
"""

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.task import deferLater
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from statserver.server import StatsServer

TIMEOUT = 10.0

# A text frame as Knative v0.16-v0.19 activators send it.
JSON_FRAME = (
    '{"Key":{"Namespace":"ns-1","Name":"rev-1"},'
    '"Stat":{"pod_name":"activator-1","average_concurrent_requests":1.5,"request_count":3}}'
)


def bounded(d, seconds=TIMEOUT):
    """``d`` with a timeout, so that no test can hang."""
    return d.addTimeout(seconds, reactor)


class HandshakeFailed(Exception):
    """The WebSocket opening handshake did not complete."""


class StatsClientProtocol(WebSocketClientProtocol):
    """Records the close it sees; ``opened`` and ``closed`` are Deferreds."""

    def __init__(self):
        super().__init__()
        self.opened = Deferred()
        self.closed = Deferred()  # fires with (wasClean, code, reason)
        self.received = []

    def onOpen(self):
        self.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.received.append((payload, isBinary))

    def onClose(self, wasClean, code, reason):
        if not self.opened.called:
            self.opened.errback(HandshakeFailed(reason))
        self.closed.callback((wasClean, code, reason))

    def send_frame(self, payload, binary=True):
        self.sendMessage(payload, isBinary=binary)


async def connect(
    port, *, host="127.0.0.1", path="/", protocol=StatsClientProtocol, options=None,
    seconds=TIMEOUT,
):
    """Open a WebSocket to 127.0.0.1:port sending ``Host: host``; fires with the client
    protocol once open (within ``seconds``), errbacks with ``HandshakeFailed`` when the
    handshake fails."""
    factory = WebSocketClientFactory(f"ws://{host}:{port}{path}", reactor=reactor)
    factory.protocol = protocol
    # autobahn's timers fire up to 1 s early (txaio rounds deadlines down to a second):
    # its default 1 s close handshake timeout could fire at once
    factory.setProtocolOptions(**{"closeHandshakeTimeout": 5, **(options or {})})
    client = await bounded(
        TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory), seconds
    )
    await bounded(client.opened, seconds)
    return client


async def start_server(port=0, **kwargs):
    """A started ``StatsServer`` listening on 127.0.0.1 at ``port`` (a free one by default)."""
    server = StatsServer(
        serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1"), reactor=reactor, **kwargs
    )
    server.startService()
    await bounded(server.listening)
    return server


def port_of(server):
    return server.port.getHost().port


def ws_url(server):
    """The URL a sender dials to reach ``server``."""
    return f"ws://127.0.0.1:{port_of(server)}/"


async def http_get(port, path=b"/", headers=None, pool=None):
    """``(status, headers, body)`` of a plain GET."""
    agent = Agent(reactor, pool=pool)
    response = await bounded(
        agent.request(b"GET", b"http://127.0.0.1:%d%s" % (port, path), Headers(headers or {}))
    )
    body = await bounded(readBody(response))
    return (response.code, response.headers, body)


def until(predicate, interval=0.01):
    """A Deferred that fires once ``predicate()`` is true (polled; bound it)."""

    async def poll():
        while not predicate():
            await deferLater(reactor, interval, lambda: None)

    return Deferred.fromCoroutine(poll())


async def take(server, n):
    """The next ``n`` stats from the server's queue."""
    out = []
    for _ in range(n):
        out.append(await bounded(server.stats.get()))
    return out


def delivered(stat):
    """A delivered stat as the stat-frames README writes it (no received_at; timestamp
    only where the era carries one)."""
    d = stat.to_dict()
    del d["received_at"]
    if d["timestamp"] is None:
        del d["timestamp"]
    return d
