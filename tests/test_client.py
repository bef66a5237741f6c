"""statserver.client against real sockets on 127.0.0.1: our StatsServer, and a bare
autobahn server for what ours never does (stop answering pings)."""

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from stats import run
from twisted.internet import defer, endpoints, reactor
from wsclient import bounded, port_of, start_server, take, until, ws_url

from statserver.client import Backoff, NotConnected, StatsClient, encode_frames

# -- the backoff, as Knative's wait.Backoff{100ms, 1.3, jitter 0.5, 20 steps} --


def test_backoff_grows_by_1_3_and_starts_over_after_20_dials():
    b = Backoff(random=lambda: 0.0)
    delays = [b.next_delay() for _ in range(21)]
    assert delays[0] == pytest.approx(0.1)
    assert delays[1] == pytest.approx(0.13)
    assert delays[18] == pytest.approx(0.1 * 1.3**18)  # ~11.2 s, the longest wait
    assert delays[19] == 0.0  # the 20th failed dial: Knative dials again at once
    assert delays[20] == pytest.approx(0.1)


def test_backoff_jitter_adds_up_to_half():
    assert Backoff(random=lambda: 1.0).next_delay() == pytest.approx(0.15)
    b = Backoff(random=lambda: 0.999)
    b.next_delay()
    b.reset()
    assert b.next_delay() == pytest.approx(0.1 * 1.4995)


# -- a bare autobahn server that counts connections and may stop answering pings --


class _BareServerProtocol(WebSocketServerProtocol):
    def onOpen(self):
        self.factory.opened.append(self)
        waiters, self.factory.waiters = self.factory.waiters, []
        for d in waiters:
            d.callback(self)

    def onPing(self, payload):
        self.factory.pings += 1
        if self.factory.answer_pings:
            self.sendPong(payload)


class BareServer:
    def __init__(self):
        self.factory = WebSocketServerFactory()
        self.factory.protocol = _BareServerProtocol
        self.factory.opened = []
        self.factory.waiters = []
        self.factory.pings = 0
        self.factory.answer_pings = True

    async def start(self):
        ep = endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self.port = await ep.listen(self.factory)
        self.url = f"ws://127.0.0.1:{self.port.getHost().port}/"
        return self

    def next_open(self):
        d = defer.Deferred()
        self.factory.waiters.append(d)
        return bounded(d)

    async def stop(self):
        for p in self.factory.opened:
            p.dropConnection(abort=True)
        await self.port.stopListening()


@pytest_twisted.ensureDeferred
async def test_no_pong_within_the_timeout_means_reconnect():
    server = await BareServer().start()
    client = StatsClient(server.url, reactor=reactor, pong_timeout=0.6)
    first = server.next_open()
    client.startService()
    try:
        await first
        await bounded(client.when_connected())
        # While the server answers, pings (every 0.2 s) keep the connection: the 5th ping
        # comes 0.4 s past the first one's pong timeout.
        await bounded(until(lambda: server.factory.pings >= 5))
        assert len(server.factory.opened) == 1
        # Now it stops answering: within 0.6 s the client gives up and dials again.
        server.factory.answer_pings = False
        second = server.next_open()
        await second
        await bounded(client.when_connected())
        assert len(server.factory.opened) == 2
        assert client.connections == 2
    finally:
        await bounded(client.stopService())
        await server.stop()


def deferLater(seconds):
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_send_while_down_fails_at_once():
    # A port nobody listens on: bind one, note it, close it.
    server = await BareServer().start()
    url = server.url
    await server.stop()
    client = StatsClient(url, reactor=reactor)
    client.startService()
    try:
        assert not client.connected
        d = client.send(run(1), format="json")
        assert d.called  # no waiting, no buffering
        with pytest.raises(NotConnected):
            await d
    finally:
        await bounded(client.stopService())


@pytest_twisted.ensureDeferred
async def test_a_failed_dial_is_logged_and_tried_again(logged):
    server = await BareServer().start()
    url = server.url
    await server.stop()  # nobody listens there now
    client = StatsClient(url, reactor=reactor, backoff=Backoff(initial=0.01, random=lambda: 0.0))
    client.startService()
    try:
        await bounded(until(lambda: len(logged.containing(f"cannot connect to {url} (")) >= 2))
        assert "; next try in 0.01s" in logged.containing(f"cannot connect to {url} (")[0]
        assert not client.connected and client.connections == 0
    finally:
        await bounded(client.stopService())


def test_unknown_format_is_refused():
    client = StatsClient("ws://127.0.0.1:1/", reactor=reactor)
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        client.send(run(1), format="xml")
    with pytest.raises(ValueError, match="unknown format 'xml': use one of gob, protobuf, json"):
        encode_frames(run(1), "xml")


# -- against our own StatsServer --


def fields(stat):
    """What a sender controls of a stat, whatever the format."""
    return (stat.namespace, stat.name, stat.pod_name, stat.average_concurrent_requests,
            stat.request_count)


@pytest.mark.parametrize("format", ["gob", "json", "protobuf"])
@pytest_twisted.ensureDeferred
async def test_every_format_is_delivered(format):
    server = await start_server(shutdown_timeout=2.0)
    url = ws_url(server)
    client = StatsClient(url)  # the global reactor
    client.startService()
    try:
        await bounded(client.when_connected())
        assert client.when_connected().called  # connected already: at once
        sent = run(5)
        frames = await bounded(client.send(sent, format=format))
        assert frames == (1 if format == "protobuf" else 5)
        got = await take(server, 5)
        assert [fields(s) for s in got] == [fields(s) for s in sent]
        await bounded(deferLater(0))  # the counter follows the queue in the same frame
        received = server.registry.get_sample_value(
            "statserver_stats_received_total", {"format": format})
        assert received == 5
    finally:
        await bounded(client.stopService())
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_reconnects_after_the_server_restarts():
    server = await start_server(shutdown_timeout=2.0)
    url, port = ws_url(server), port_of(server)
    client = StatsClient(url, reactor=reactor)
    client.startService()
    try:
        await bounded(client.when_connected())
        await bounded(client.send(run(1, namespace="before"), format="protobuf"))
        assert (await take(server, 1))[0].namespace == "before"
        await bounded(server.stopService())  # closes with 1012, stops listening
        await bounded(client.when_disconnected())
        with pytest.raises(NotConnected):
            await bounded(client.send(run(1), format="json"))
        # The client keeps dialling (and failing) until a server listens again.
        server = await start_server(port, shutdown_timeout=2.0)
        await bounded(client.when_connected())
        assert client.connections == 2
        await bounded(client.send(run(1, namespace="after"), format="json"))
        assert (await take(server, 1))[0].namespace == "after"
    finally:
        await bounded(client.stopService())
        await bounded(server.stopService())


class _ClosingProtocol(_BareServerProtocol):
    def onOpen(self):
        super().onOpen()
        if len(self.factory.opened) == 1:
            # autobahn's sendClose() refuses 1012; a restarting StatsServer sends it so.
            self.sendCloseFrame(code=1012, reasonUtf8=b"restarting", isReply=False)


@pytest_twisted.ensureDeferred
async def test_close_1012_means_reconnect_at_once():
    server = await BareServer().start()
    server.factory.protocol = _ClosingProtocol
    # A backoff far longer than the test may take: only a redial at once can pass.
    client = StatsClient(server.url, reactor=reactor, backoff=Backoff(initial=60))
    second = server.next_open()
    second.addCallback(lambda _: server.next_open())  # the first open is the closing one
    client.startService()
    try:
        await bounded(second)  # 10 s: far from the 60 s a backoff would wait
        await bounded(client.when_connected())
        assert client.connections == 2
    finally:
        await bounded(client.stopService())
        await server.stop()


class _DeafProtocol(_BareServerProtocol):
    """Reads nothing once open, until told to."""

    def onOpen(self):
        self.transport.pauseProducing()
        super().onOpen()


async def connected_to_a_deaf_server(**client_options):
    """A started ``BareServer`` that stops reading each connection once it opens, a
    ``StatsClient`` (with ``client_options``) connected to it, and the server's side of
    that connection; both stopped again if the connection does not open."""
    server = await BareServer().start()
    server.factory.protocol = _DeafProtocol
    client = StatsClient(server.url, reactor=reactor, **client_options)
    opened = server.next_open()
    client.startService()
    try:
        peer = await opened
        await bounded(client.when_connected())
    except BaseException:
        await bounded(client.stopService())
        await server.stop()
        raise
    return server, client, peer


@pytest_twisted.ensureDeferred
async def test_a_server_that_does_not_read_makes_sends_wait_then_fail():
    from statserver.client import SendBufferFull

    server, client, peer = await connected_to_a_deaf_server(max_buffer=256 * 1024)
    try:
        batch = run(100)
        waiting = []
        # The kernel's buffers fill first, then Twisted's; then sends wait, then fail.
        for _ in range(5000):
            d = client.send(batch, format="json")
            if d.called:
                try:
                    await d
                except SendBufferFull:
                    break
                continue
            waiting.append(d)
        else:
            pytest.fail("5000 sends to a server that reads nothing never failed")
        assert waiting, "no send waited for the buffer to drain before the limit"
        assert not any(d.called for d in waiting)
        peer.transport.resumeProducing()  # the server reads again: the waiting sends fire
        for d in waiting:
            assert await bounded(d) == 100
    finally:
        await bounded(client.stopService())
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_waiting_sends_fail_when_the_connection_is_lost():
    server, client, peer = await connected_to_a_deaf_server(max_buffer=1 << 30,
                                                            backoff=Backoff(initial=60))
    try:
        batch = run(100)
        for _ in range(5000):
            d = client.send(batch, format="json")
            if not d.called:
                break
            await d
        else:
            pytest.fail("5000 sends to a server that reads nothing never waited")
        peer.dropConnection(abort=True)
        with pytest.raises(NotConnected, match="the connection closed"):
            await bounded(d)
        await bounded(client.when_disconnected())
    finally:
        await bounded(client.stopService())
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_stat_the_encoder_refuses_fails_its_send():
    server = await BareServer().start()
    client = StatsClient(server.url, reactor=reactor, gob_era="v06")  # int32 counts
    client.startService()
    try:
        await bounded(client.when_connected())
        from statserver.gob import GobError

        d = client.send(run(1, requests=1e12), format="gob")  # a Deferred, not a raise
        with pytest.raises(GobError, match="RequestCount 1000000000000.0 does not fit the v06 era's int32"):
            await bounded(d)
        assert await bounded(client.send(run(1), format="gob")) == 1  # still connected
    finally:
        await bounded(client.stopService())
        await server.stop()


class _DenyingProtocol(_BareServerProtocol):
    def onConnect(self, request):
        self.factory.attempts += 1
        raise ConnectionDeny(404, "no stats here")


@pytest_twisted.ensureDeferred
async def test_a_refused_websocket_handshake_is_logged_and_dialled_again(logged):
    server = await BareServer().start()
    server.factory.protocol = _DenyingProtocol
    server.factory.attempts = 0
    client = StatsClient(server.url, reactor=reactor, backoff=Backoff(initial=0.01))
    client.startService()
    try:
        await bounded(until(lambda: server.factory.attempts >= 2))
        assert not client.connected and client.connections == 0
        assert client.when_disconnected().called  # not connected: at once
        assert logged.containing(f"cannot open a WebSocket to {server.url}: ")
    finally:
        await bounded(client.stopService())
        await server.stop()


class _SlowHandshakeProtocol(_BareServerProtocol):
    """Answers the opening handshake when the test says so; records its close code."""

    def onConnect(self, request):
        self.factory.release = defer.Deferred()
        self.factory.held.callback(None)
        return self.factory.release

    def onClose(self, wasClean, code, reason):
        self.factory.closed.callback(code)


@pytest_twisted.ensureDeferred
async def test_a_handshake_that_ends_after_stop_is_closed_with_1000():
    server = await BareServer().start()
    server.factory.protocol = _SlowHandshakeProtocol
    server.factory.held, server.factory.closed = defer.Deferred(), defer.Deferred()
    client = StatsClient(server.url, reactor=reactor)
    client.startService()
    try:
        await bounded(server.factory.held)  # TCP is up, the upgrade is waiting
        await bounded(client.stopService())  # nothing open yet: fires at once
        server.factory.release.callback(None)  # now the server accepts it
        assert await bounded(server.factory.closed) == 1000
        assert client.connections == 0 and not client.connected
    finally:
        await server.stop()
