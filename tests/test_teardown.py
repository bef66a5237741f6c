"""What the server lets go of is freed by reference counting alone: no reference cycle
is left for Python's cyclic garbage collector. ``twist statserver`` freezes what survives
each full collection (statserver/gcpolicy.py), and a frozen object in a cycle would never
be freed: a leak per closed connection. So every way a connection ends is run here with
the collector off, and the collector then must find nothing of the server's."""

import gc

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock
from wsclient import (
    bounded,
    client_frame,
    connect,
    http_get,
    raw_connect,
    raw_websocket,
    until,
    upgrade_request,
)

from statserver.aggregation.aggregator import Aggregator
from statserver.constants import FORMATS
from statserver.model import StatMessage
from statserver.tap import Options, makeService
from statserver.wire import encode_json, encode_protobuf, encode_stat_frame

STAT = StatMessage("ns", "rev-1", "activator-1", average_concurrent_requests=1.5,
                   request_count=3.0)


def server_side(obj):
    """True for the objects a server-side connection is made of (the test's own clients,
    in the same process, make cycles of their own: autobahn's client protocols, Twisted's
    HTTP client)."""
    cls = type(obj)
    module = cls.__module__ or ""
    return (module.startswith("statserver")
            or (module, cls.__name__) in {("twisted.internet.tcp", "Server"),
                                          ("twisted.web.server", "Request"),
                                          ("twisted.web.http", "HTTPChannel")})


def cyclic_garbage():
    """The server's objects that only the cyclic collector would free, by type name."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = [o for o in gc.garbage if server_side(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return sorted({type(o).__qualname__ for o in found})


async def every_way_a_connection_ends(port):
    # WebSockets in each format, closed by the sender
    for payload, binary in ((encode_json(STAT).encode(), False),
                            (encode_protobuf([STAT]), True),
                            (encode_stat_frame(STAT, "v10"), True)):
        client = await connect(port)
        client.sendMessage(payload, isBinary=binary)
        client.sendClose(1000)
        await bounded(client.closed)
    # closed by the server: a message over --max-message-size (1009) and a bad frame
    client = await connect(port)
    client.sendMessage(b"x" * 200_001, isBinary=True)
    assert (await bounded(client.closed))[1] == 1009
    # a frame big enough to be decoded in slices (2,000 stats), the sender gone at once
    client = await connect(port)
    client.sendMessage(encode_protobuf([STAT._replace(name=f"big-{i}") for i in range(2000)]),
                       isBinary=True)
    client.transport.loseConnection()
    # dropped by the sender without a close, after a frame the server cannot decode
    raw = await raw_websocket(port)
    raw.transport.write(client_frame(2, b"\xff\x00 not a stat"))
    raw.transport.abortConnection()
    # an upgrade autobahn refuses (a WebSocket version it does not speak): it keeps HTTP
    raw = await raw_connect(port)
    raw.transport.write(upgrade_request().replace(b"Version: 13", b"Version: 99"))
    await raw.until_received(b"HTTP/1.1 400")
    raw.transport.loseConnection()
    # plain HTTP: each endpoint, a request the server refuses, one left half-written
    for path in (b"/healthz", b"/metrics", b"/api/v1/revisions", b"/dashboard/", b"/",
                 b"/dashboard/history?ns=ns&name=rev-1"):
        await http_get(port, path)
    raw = await raw_connect(port)  # a dashboard viewer's event stream, left by the viewer
    raw.transport.write(b"GET /dashboard/events HTTP/1.1\r\nHost: x\r\n\r\n")
    await raw.until_received(b"data:")
    raw.transport.loseConnection()
    raw = await raw_connect(port)
    raw.transport.write(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
    await raw.until_received(b"413")
    raw = await raw_connect(port)
    raw.transport.write(b"GET /healthz HTTP/1.1\r\nHo")
    raw.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_closed_connection_leaves_no_reference_cycle():
    options = Options()
    options.parseOptions(["--port", "tcp:0:interface=127.0.0.1", "--max-message-size",
                          "200000", "--gc-freeze", "start"])
    service = makeService(options, reactor=reactor)
    service.startService()
    server = service.server
    gc.collect()
    gc.disable()
    try:
        port = (await bounded(server.listening)).getHost().port
        await every_way_a_connection_ends(port)

        def received():
            return [server.registry.get_sample_value("statserver_stats_received_total",
                                                     {"format": f}) for f in FORMATS]

        await bounded(until(lambda: received() == [1, 2001, 1]  # gob, protobuf, JSON
                            and server.site.open_connections == 0 and not server.connections))
        await bounded(service.stopService())
        assert cyclic_garbage() == []
    finally:
        gc.enable()


def test_an_expired_revision_leaves_no_reference_cycle():
    clock = Clock()
    aggregator = Aggregator(clock)
    gc.collect()
    gc.disable()
    try:
        aggregator.record_many([StatMessage("ns", f"rev-{i}", f"pod-{i % 3}", 1.0, 2.0,
                                            received_at=0) for i in range(50)])
        assert len(aggregator) == 50
        clock.advance(3 * 60)  # twice the stable window, and more
        aggregator.expire()
        assert len(aggregator) == 0
        assert cyclic_garbage() == []
    finally:
        gc.enable()
