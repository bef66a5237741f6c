"""Test helpers: a StatsServer on 127.0.0.1:0, autobahn's Twisted client, plain HTTP.

Every helper that waits returns a Deferred bounded by a timeout.
"""

from inspect import isawaitable

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, serverFromString
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from statserver.server.service import StatsServer

TIMEOUT = 10.0  # one step against a server in this process
# one step of a child process (twist, a Go peer, Chromium): a cold start imports Twisted,
# autobahn and protobuf on a busy machine
PROCESS_TIMEOUT = 30.0

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
    """A Deferred that fires with ``predicate()``'s first true value, polled every
    ``interval`` seconds (bound it); ``predicate`` may be an async function."""

    async def poll():
        while True:
            value = predicate()
            if isawaitable(value):
                value = await value
            if value:
                return value
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


class RawClient(Protocol):
    """Plain TCP: what the test writes goes out as is; ``received`` holds what came back,
    ``lost`` fires when the connection ends. For requests and frames no client library
    would send (bad framing, slow headers, duplicate headers)."""

    def __init__(self):
        self.received = b""
        self.lost = Deferred()
        self._waiting = []  # (bytes awaited, Deferred)

    def dataReceived(self, data):
        self.received += data
        for entry in list(self._waiting):
            if entry[0] in self.received:
                self._waiting.remove(entry)
                entry[1].callback(self.received)

    def connectionLost(self, reason):
        self.lost.callback(self.received)

    def until_received(self, marker, seconds=TIMEOUT):
        """Fires (within ``seconds``) once ``marker`` has been received."""
        if marker in self.received:
            return bounded(succeed(self.received), seconds)
        d = Deferred()
        self._waiting.append((marker, d))
        return bounded(d, seconds)


async def raw_connect(port):
    """A connected ``RawClient`` to 127.0.0.1:port."""
    return await bounded(
        connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RawClient())
    )


def upgrade_request(host="127.0.0.1", path="/", extra=b""):
    """A WebSocket opening handshake request, as bytes."""
    return (
        b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"%s\r\n" % (path.encode(), host.encode(), extra)
    )


async def raw_websocket(port):
    """A ``RawClient`` past the WebSocket handshake: write ``client_frame``s to it."""
    client = await raw_connect(port)
    client.transport.write(upgrade_request())
    await client.until_received(b"\r\n\r\n")
    assert client.received.startswith(b"HTTP/1.1 101"), client.received
    client.received = client.received.split(b"\r\n\r\n", 1)[1]
    return client


def client_frame(opcode, payload, mask=b"\x01\x02\x03\x04", *, fin=True, rsv=0,
                 length_form=None):
    """One WebSocket frame from a client (opcode 0 continuation, 1 text, 2 binary, 8 close,
    9 ping, 10 pong), final and masked unless asked otherwise (``mask=b""``: unmasked).
    ``length_form`` 0, 126 or 127 asks for that length encoding (the shortest by default,
    and whenever the one asked for cannot hold the length)."""
    n = len(payload)
    shortest = 0 if n < 126 else 126 if n < 1 << 16 else 127
    form = shortest if length_form is None else max(shortest, length_form)
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if mask else 0
    if form == 0:
        head += bytes([bit | n])
    elif form == 126:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if mask else payload
    return head + mask + body
