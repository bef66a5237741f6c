"""The sender connection (``statserver.server.protocol``) around its receiver: a receiver
that raises never breaks the connection or reaches the reactor, and senders reach a
server listening on a UNIX socket (``--port unix:PATH``)."""

import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint, serverFromString
from wsclient import JSON_FRAME, StatsClientProtocol, bounded, take, until
from zope.interface import implementer

from statserver.interfaces import IStatsReceiver
from statserver.server.protocol import StatsServerFactory, outgoing_bytes
from statserver.server.service import StatsServer


@implementer(IStatsReceiver)
class _Raising:
    """A receiver every call of which raises; counts the calls."""

    def __init__(self):
        self.calls = []

    def _fail(self, name):
        self.calls.append(name)
        raise RuntimeError(f"receiver broke in {name}")

    def connection_opened(self, connection):
        self._fail("opened")

    def frame_received(self, connection, payload, is_binary):
        self._fail("frame")

    def message_too_big(self, connection, size):
        self._fail("too big")

    def connection_refused(self, connection, reason):
        self._fail("refused")

    def connection_closed(self, connection):
        self._fail("closed")

    def transport_lost(self, connection):
        self._fail("lost")


def _serve_raising(**options):
    receiver = _Raising()
    factory = StatsServerFactory(receiver, reactor=reactor, ping_interval=0,
                                 max_message_size=options.get("max_message_size", 1 << 20))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    return receiver, port


async def _client(port_number):
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port_number}/", reactor=reactor)
    factory.protocol = StatsClientProtocol
    factory.setProtocolOptions(closeHandshakeTimeout=5)
    client = await bounded(TCP4ClientEndpoint(reactor, "127.0.0.1", port_number).connect(factory))
    await bounded(client.opened)
    return client


@pytest_twisted.ensureDeferred
async def test_a_raising_receiver_is_logged_and_the_connection_lives_on(logged):
    receiver, port = _serve_raising()
    try:
        client = await _client(port.getHost().port)
        client.send_frame(JSON_FRAME.encode(), binary=False)
        client.send_frame(JSON_FRAME.encode(), binary=False)
        client.sendClose(code=1000)
        was_clean, code, _ = await bounded(client.closed)
    finally:
        await port.stopListening()
    # both frames reached the receiver: the first one's error did not end the connection
    assert receiver.calls[:3] == ["opened", "frame", "frame"]
    assert was_clean and code == 1000
    await bounded(_until_called(receiver, "lost"))
    for words in ("Unexpected error opening", "Unexpected error handling a frame",
                  "Unexpected error closing", "Unexpected error after losing"):
        assert logged.containing(words), words
    assert len(logged.containing("Unexpected error handling a frame")) == 2


@pytest_twisted.ensureDeferred
async def test_a_raising_receiver_does_not_stop_the_1009_for_an_oversize_message(logged):
    receiver, port = _serve_raising(max_message_size=64)
    try:
        client = await _client(port.getHost().port)
        client.send_frame(b"x" * 100)
        _, code, _ = await bounded(client.closed)
    finally:
        await port.stopListening()
    assert code == 1009
    assert "too big" in receiver.calls
    assert logged.containing("Unexpected error logging an oversize message")


def _until_called(receiver, name):
    return until(lambda: name in receiver.calls)


def test_outgoing_bytes_of_a_transport_that_does_not_say_is_zero():
    assert outgoing_bytes(object()) == 0


@pytest_twisted.ensureDeferred
async def test_senders_over_a_unix_socket(tmp_path):
    path = str(tmp_path / "stats.sock")
    server = StatsServer(serverFromString(reactor, f"unix:{path}"), reactor=reactor)
    server.startService()
    try:
        await bounded(server.listening)
        factory = WebSocketClientFactory("ws://localhost/", reactor=reactor)
        factory.protocol = StatsClientProtocol
        client = await bounded(UNIXClientEndpoint(reactor, path).connect(factory))
        await bounded(client.opened)
        client.send_frame(JSON_FRAME.encode(), binary=False)
        [stat] = await take(server, 1)
        assert (stat.namespace, stat.name, stat.pod_name) == ("ns-1", "rev-1", "activator-1")
    finally:
        await bounded(server.stopService())
