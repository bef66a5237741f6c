"""The server's and the client's failure paths, in memory on a ``MemoryReactor``
(memoryreactor.py): a peer that stops answering pings, a shutdown whose peers ignore the
1012, a connection opened while stopping, a decoder bug, the client's redial backoff. No
real time passes: every timer (Twisted's and txaio's) runs on the test's clock, which the
tests advance (the ``clock`` fixture of conftest.py)."""

import pytest
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from memoryreactor import FixedResolver
from twisted.internet._resolver import HostResolution
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.test import iosim

from statserver.client import Backoff, StatsClient
from statserver.constants import CLOSE_SERVICE_RESTART
from statserver.model import StatMessage
from statserver.server import service
from statserver.server.protocol import StatsServerProtocol
from statserver.server.service import StatsServer
from statserver.wire import encode_json

SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 8080)


def stat(name):
    return StatMessage("ns", name, "activator-1", average_concurrent_requests=1.5,
                       request_count=3.0)


class PeerTransport(iosim.FakeTransport):
    """iosim's in-memory transport, remembering whether it was aborted (iosim's own
    treats an abort as a plain close)."""

    aborted = False

    def abortConnection(self):
        self.aborted = True
        super().abortConnection()


class Peer(WebSocketClientProtocol):
    """A sender: records the close code it got from the server."""

    close_code = None

    def onCloseFrame(self, code, reasonRaw):
        self.close_code = code
        return super().onCloseFrame(code, reasonRaw)


class SilentPeer(Peer):
    """A sender that answers neither pings nor the server's close."""

    def onPing(self, payload):
        pass

    def onCloseFrame(self, code, reasonRaw):
        self.close_code = code  # and no close reply


class Link:
    """One in-memory TCP connection between a client protocol and the server."""

    def __init__(self, pump, client, server_io):
        self.pump = pump
        self.client = client
        self.server_io = server_io

    @property
    def server(self):
        """The server's protocol on this connection (once upgraded, the WebSocket's)."""
        return self.server_io.protocol


def make_server(clock, **kwargs):
    """A started ``StatsServer`` listening on the memory reactor."""
    server = StatsServer(TCP4ServerEndpoint(clock, 8080), reactor=clock, **kwargs)
    server.startService()
    assert server.listening.called
    return server


def open_link(clock, server_protocol, peer=Peer, port=40000, server_transport=PeerTransport):
    """Connect a ``peer`` client protocol to ``server_protocol`` (on a
    ``server_transport``) in memory and run the opening handshake."""
    factory = WebSocketClientFactory("ws://127.0.0.1:8080/", reactor=clock)
    factory.protocol = peer
    client_address = IPv4Address("TCP", "127.0.0.1", port)
    client = factory.buildProtocol(SERVER_ADDRESS)
    server_io = server_transport(server_protocol, isServer=True, hostAddress=SERVER_ADDRESS,
                                 peerAddress=client_address)
    client_io = PeerTransport(client, isServer=False, hostAddress=client_address,
                              peerAddress=SERVER_ADDRESS)
    pump = iosim.connect(server_protocol, server_io, client, client_io, clock=clock)
    return Link(pump, client, server_io)


def connect_through_site(clock, server, peer=Peer, port=40000):
    """A WebSocket to ``server`` through its HTTP site (the upgrade path), open."""
    link = open_link(clock, server.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", port)),
                     peer, port)
    assert link.client.state == link.client.STATE_OPEN
    assert link.server in server.connections
    return link


def advance_to(clock, when, links, step=0.1):
    """Advance ``clock`` to ``when`` seconds in ``step``s, moving the bytes of every link
    after each (a connection's loss is delivered, as a reactor would on its next turn)."""
    while clock.seconds() < when:
        clock.advance(min(step, when - clock.seconds()))
        for link in links:
            link.pump.flush()


def open_connections(server):
    return server.registry.get_sample_value("statserver_connections")


def test_a_peer_that_stops_answering_pings_is_dropped(clock, logged, monkeypatch):
    # ping_interval 10 s: a ping at 10 s, then 2 × 10 + 1 s for the pong (protocol.py)
    # autobahn's lines are rate-limited process-wide, in real time: a fresh limit, so
    # that earlier tests' ping timeouts cannot hold this one's line back
    monkeypatch.setattr(StatsServerProtocol.log, "_limits", {})
    server = make_server(clock, ping_interval=10.0)
    link = connect_through_site(clock, server, SilentPeer)
    assert open_connections(server) == 1

    advance_to(clock, 10 + 21 - 0.1, [link])
    assert not link.server_io.aborted
    assert link.client.state == link.client.STATE_OPEN
    assert len(server.connections) == 1

    advance_to(clock, 10 + 21 + 0.1, [link])
    assert link.server_io.aborted
    assert link.server_io.disconnected and link.client.state == link.client.STATE_CLOSED
    assert server.connections == ()
    assert open_connections(server) == 0
    assert logged.containing("WebSocket ping timeout")


def test_a_peer_that_answers_pings_is_kept(clock):
    # the counterpart: the same minute with pongs keeps the connection
    server = make_server(clock, ping_interval=10.0)
    link = connect_through_site(clock, server, Peer)
    advance_to(clock, 60, [link])
    assert not link.server_io.aborted
    assert link.client.state == link.client.STATE_OPEN
    assert open_connections(server) == 1


def test_shutdown_aborts_peers_that_ignore_the_1012(clock, logged):
    # shutdown_timeout under autobahn's 3 s close handshake timeout, which would drop
    # the peer by itself
    server = make_server(clock, shutdown_timeout=1.0)
    link = connect_through_site(clock, server, SilentPeer)

    done = server.stopService()
    link.pump.flush()
    assert link.client.close_code == CLOSE_SERVICE_RESTART
    advance_to(clock, 0.9, [link])
    assert not done.called
    assert not link.server_io.aborted and len(server.connections) == 1

    advance_to(clock, 1.1, [link])
    assert done.called
    assert link.server_io.aborted and link.server_io.disconnected
    assert server.connections == ()
    assert open_connections(server) == 0
    [warning] = logged.containing("shutdown timed out")
    assert "1 connections dropped" in warning
    assert logged.containing("Stats server stopped")


def test_a_connection_opened_during_shutdown_gets_a_1012_at_once(clock):
    server = make_server(clock, shutdown_timeout=5.0)
    server.stats.put(stat("queued"))  # the shutdown waits for the consumer to take it
    done = server.stopService()
    assert server.stopping and not done.called

    # Through the site an upgrade is answered 503 while stopping: this is a handshake
    # that got past that check, straight to the WebSocket factory.
    link = open_link(clock, server.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1)))
    assert link.client.close_code == CLOSE_SERVICE_RESTART
    assert link.server.restarting
    assert link.client.state == link.client.STATE_CLOSED  # it replied; the close completed
    assert server.connections == ()
    assert clock.seconds() == 0  # at once: no timer was needed

    server.stats.get()
    clock.advance(0)
    assert done.called


def test_a_decoder_bug_is_a_bad_frame_logged_with_its_traceback(clock, logged, monkeypatch):
    server = make_server(clock)
    link = connect_through_site(clock, server)

    def broken(payload, is_binary, received_at):
        raise RuntimeError("decoder bug for the test")

    def errors():
        return server.registry.get_sample_value("statserver_decode_errors_total",
                                                {"format": "json"})

    before = errors()
    with monkeypatch.context() as patch:
        patch.setattr(service, "decode_frame", broken)
        link.client.sendMessage(encode_json(stat("rev-1")).encode(), isBinary=False)
        link.pump.flush()

    assert errors() == before + 1
    assert server.decode_errors_total() == 1
    assert server.stats.pending == []
    [event] = [e for e in logged if "Bad frame from" in e.get("log_format", "")]
    assert event["reason"] == "decoder bug"
    assert event["log_failure"].check(RuntimeError)
    assert "decoder bug for the test" in event["log_failure"].getTraceback()

    # the connection is kept, and its next frame is a stat
    assert link.client.state == link.client.STATE_OPEN and not link.server_io.disconnecting
    link.client.sendMessage(encode_json(stat("rev-2")).encode(), isBinary=False)
    link.pump.flush()
    [taken] = server.stats.pending
    assert taken.name == "rev-2"
    assert errors() == before + 1


class NoAddresses(FixedResolver):
    """A resolver that finds no address for any name: every dial fails at once."""

    def __init__(self):
        super().__init__(hosts=())


def refuse_last_dial(clock):
    """Fail the newest ``connectTCP`` the memory reactor recorded, as a refused dial."""
    host, port, factory, timeout, bind = clock.tcpClients[-1]
    factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))


def check_backoff(clock, client, fail_dial, dial_count, jitter_bounds, reported_after=0.0):
    """Fail four dials in turn with ``fail_dial()``; after each, no redial just before
    its documented wait (100 ms × 1.3ⁿ × ``jitter_bounds[0]``, counted from when the
    endpoint reports the failure, ``reported_after`` seconds later) and one just after
    (× ``jitter_bounds[1]``)."""
    client.startService()
    assert dial_count() == 1
    low, high = jitter_bounds
    for n in range(4):
        fail_dial()
        base = 0.1 * 1.3**n
        if reported_after:
            clock.advance(reported_after)  # the endpoint reports the failure
        clock.advance(base * low - 0.001)
        assert dial_count() == n + 1, f"redial {n + 1} came before {base * low:.3f}s"
        clock.advance(base * (high - low) + 0.002)
        assert dial_count() == n + 2, f"no redial {n + 1} by {base * high:.3f}s"
    client.stopService()
    clock.advance(60)
    assert dial_count() == 5  # stopped: no more dials


class CountingResolver(NoAddresses):
    """``NoAddresses``, counting the names it was asked for (one per dial). Past
    ``limit`` lookups it leaves the name unresolved, so that a client redialling without
    a wait cannot spin the clock's ``advance`` forever."""

    def __init__(self, limit=100):
        super().__init__()
        self.lookups = 0
        self.limit = limit

    def resolveHostName(self, receiver, hostName, *args, **kwargs):
        self.lookups += 1
        if self.lookups > self.limit:
            resolution = HostResolution(hostName)
            receiver.resolutionBegan(resolution)
            return resolution
        return super().resolveHostName(receiver, hostName, *args, **kwargs)


@pytest.mark.parametrize("jitter", [0.0, 1.0])
def test_the_client_redials_after_its_backoff_and_not_before(clock, jitter, logged):
    # Knative's backoff (client.py): 100 ms × 1.3ⁿ plus up to 50 % (``jitter`` is the
    # random draw: 0 is the shortest wait, 1 the longest). The dials fail at once, in
    # name resolution.
    resolver = CountingResolver()
    clock.installNameResolver(resolver)
    client = StatsClient("ws://stats.invalid:8080/", reactor=clock,
                         backoff=Backoff(random=lambda: jitter))
    factor = 1 + 0.5 * jitter
    check_backoff(clock, client, lambda: None, lambda: resolver.lookups,
                  (factor, factor))
    # a line a failed dial: the four above and the fifth, whose redial the stop cancelled
    assert len(logged.containing("cannot connect to ws://stats.invalid:8080/")) == 5


def test_the_client_s_default_backoff_stays_within_its_documented_bounds(clock):
    # with the real random jitter: each wait is between 1 and 1.5 times the step
    resolver = CountingResolver()
    clock.installNameResolver(resolver)
    client = StatsClient("ws://stats.invalid:8080/", reactor=clock)
    check_backoff(clock, client, lambda: None, lambda: resolver.lookups, (1.0, 1.5))


def test_the_client_redials_after_its_backoff_when_the_connection_is_refused(clock):
    # Twisted's HostnameEndpoint reports a refused dial at its next attempt slot (0.3 s,
    # even for one address); the backoff counts from then (documented in client.py)
    client = StatsClient("ws://127.0.0.1:8080/", reactor=clock,
                         backoff=Backoff(random=lambda: 0.0))
    check_backoff(clock, client, lambda: refuse_last_dial(clock),
                  lambda: len(clock.tcpClients), (1.0, 1.0), reported_after=0.3)
