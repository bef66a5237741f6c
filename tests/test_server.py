"""StatsServer on real sockets: Knative's server_test.go cases, routing, buckets."""

import pytest
import pytest_twisted
from closingsink import ClosingSink
from stats import stat
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ConnectionRefusedError
from twisted.web.client import HTTPConnectionPool
from wsclient import (
    TIMEOUT,
    HandshakeFailed,
    bounded,
    connect,
    http_get,
    port_of,
    raw_connect,
    start_server,
    take,
    until,
)

from statserver.bucket_owners import BucketOwners
from statserver.model import StatMessage
from statserver.server.service import StatsServer
from statserver.sinks.consumer import StatsConsumer
from statserver.wire import encode_json, encode_protobuf
from statserver.wire.gobstat import encode_stat_frame


def same_stat(got, want):
    return got._replace(received_at=None) == want


@pytest_twisted.ensureDeferred
async def test_lifecycle():
    server = await start_server()
    port = port_of(server)
    assert server.running
    code, _, _ = await http_get(port, b"/healthz")
    assert code == 200
    await bounded(server.stopService())
    assert server.stopping
    with pytest.raises(ConnectionRefusedError):
        await http_get(port, b"/healthz")


@pytest_twisted.ensureDeferred
async def test_the_port_is_bound_by_privileged_start_service():
    # twistd binds in privilegedStartService, before it drops root and starts the rest
    server = StatsServer(serverFromString(reactor, "tcp:0:interface=127.0.0.1"), reactor=reactor)
    server.privilegedStartService()
    try:
        assert not server.running
        port = (await bounded(server.listening)).getHost().port
        code, _, _ = await http_get(port, b"/healthz")
        assert code == 200
        server.startService()  # binds nothing more
        assert server.running and server.port.getHost().port == port
    finally:
        await bounded(server.stopService())
    with pytest.raises(ConnectionRefusedError):
        await http_get(port, b"/healthz")


@pytest_twisted.ensureDeferred
async def test_a_second_stop_service_fires_when_the_first_shutdown_has_finished():
    server = await start_server(shutdown_timeout=TIMEOUT)
    server.stats.put(stat("queued"))  # the shutdown waits for the consumer to take it
    first = server.stopService()
    second = server.stopService()
    assert not first.called and not second.called
    await bounded(server.stats.get())
    await bounded(first)
    await bounded(second)
    assert server.stopService().called  # and once stopped, at once


@pytest_twisted.ensureDeferred
async def test_an_upgraded_connection_does_not_keep_its_http_channel():
    # Its HTTP channel and upgrade request (about 25 objects) would otherwise live as
    # long as the WebSocket, for every full garbage collection to scan again.
    import gc

    from twisted.web.server import Request

    from statserver.server.channel import StatsChannel

    server = await start_server()
    try:
        client = await connect(port_of(server))
        await bounded(until(lambda: len(server.connections) == 1))
        gc.collect()
        left = [o for o in gc.get_objects() if isinstance(o, (StatsChannel, Request))]
        assert left == []
        client.sendMessage(encode_json(stat("still-served")).encode(), isBinary=False)
        [got] = await take(server, 1)
        assert got.name == "still-served"
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_the_server_and_its_connections_keep_their_contracts():
    from zope.interface.verify import verifyObject

    from statserver.interfaces import IStatsConnection, IStatsReceiver

    server = await start_server()
    try:
        assert verifyObject(IStatsReceiver, server)
        client = await connect(port_of(server))
        await bounded(until(lambda: len(server.connections) == 1))
        [conn] = server.connections
        assert verifyObject(IStatsConnection, conn)
        assert conn.info is not None and not conn.restarting
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_listen_failure_errbacks_listening():
    first = await start_server()
    try:
        from twisted.internet.endpoints import TCP4ServerEndpoint

        from statserver.server.service import StatsServer

        taken = StatsServer(
            TCP4ServerEndpoint(reactor, port_of(first), interface="127.0.0.1"), reactor=reactor
        )
        taken.startService()
        from twisted.internet.error import CannotListenError

        with pytest.raises(CannotListenError):
            await bounded(taken.listening)
        await bounded(taken.stopService())
    finally:
        await bounded(first.stopService())


@pytest.mark.parametrize(
    "path,headers",
    [
        (b"/healthz", {b"User-Agent": [b"kube-probe/1.15.i.wish"]}),
        (b"/", {b"User-Agent": [b"kube-probe/1.29"]}),
        (b"/anything/else", {b"K-Kubelet-Probe": [b"queue"]}),
        (b"/metrics", {b"K-Kubelet-Probe": [b"queue"]}),
    ],
)
@pytest_twisted.ensureDeferred
async def test_probe(path, headers):
    server = await start_server()
    try:
        code, _, _ = await http_get(port_of(server), path, headers)
        assert code == 200
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_plain_get_on_root_is_a_short_426():
    server = await start_server()
    try:
        code, headers, body = await http_get(port_of(server), b"/")
        assert code == 426
        assert b"<html" not in body.lower() and len(body) < 200
        code, _, _ = await http_get(port_of(server), b"/some/path")
        assert code == 426
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_healthz_and_metrics():
    server = await start_server()
    try:
        code, _, body = await http_get(port_of(server), b"/healthz")
        assert (code, body) == (200, b"ok\n")
        code, headers, body = await http_get(port_of(server), b"/metrics")
        assert code == 200
        assert headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
        text = body.decode()
        for name in (
            'statserver_stats_received_total{format="gob"} 0.0',
            'statserver_frames_total{format="protobuf"} 0.0',
            'statserver_decode_errors_total{format="json"} 0.0',
            "statserver_connections 0.0",
            "statserver_queue_depth 0.0",
            "statserver_backpressure_pauses_total 0.0",
        ):
            assert name in text
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_stats_received_in_order():
    server = await start_server()
    try:
        client = await connect(port_of(server))
        # Knative's own case: gob frames of its StatMessage, one a frame
        for era in ("v07", "v10", "v12"):
            sent = stat("test-revision")._replace(timestamp=1_552_572_567_770_464_932)
            client.send_frame(encode_stat_frame(sent, era=era))
            [got] = await take(server, 1)
            assert same_stat(got._replace(timestamp_offset=None), sent)
            assert got.received_at is not None

        first = stat("test-revision")
        client.send_frame(encode_protobuf([first]))
        [got] = await take(server, 1)
        assert same_stat(got, first)
        assert got.received_at is not None

        second = stat("test-revision2", "activator2", 2.2, 30.0)
        client.send_frame(encode_json(second).encode(), binary=False)
        [got] = await take(server, 1)
        assert same_stat(got, second)

        many = [stat(f"rev-{i}", concurrency=float(i)) for i in range(50)]
        for i in range(0, 50, 10):
            client.send_frame(encode_protobuf(many[i : i + 10]))
        got = await take(server, 50)
        assert [s._replace(received_at=None) for s in got] == many
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_http_idle_timeout_spares_websockets():
    server = await start_server()
    server.site.timeOut = 0.5  # the idle timeout of plain HTTP connections
    try:
        client = await connect(port_of(server))
        # an idle plain connection opened after the WebSocket: once the timeout has closed
        # it, the WebSocket's own timeout, had it one, would have fired too
        idle = await raw_connect(port_of(server))
        await bounded(idle.lost)
        assert not client.closed.called
        client.send_frame(encode_protobuf([stat("still-open")]))
        [got] = await take(server, 1)
        assert got.name == "still-open"
        client.sendClose()
        assert (await bounded(client.closed))[1] == 1000
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_closed_connections_are_not_kept():
    """Knative's TestServerDoesNotLeakGoroutines: nothing of a closed connection stays."""
    import gc

    from statserver.server.protocol import StatsServerProtocol

    def alive():
        gc.collect()
        return sum(isinstance(o, StatsServerProtocol) for o in gc.get_objects())

    server = await start_server()
    try:
        before = alive()
        for _ in range(5):
            client = await connect(port_of(server))
            client.send_frame(encode_protobuf([stat("test-revision")]))
            await take(server, 1)
            client.sendClose()
            await bounded(client.closed)
        await bounded(until(lambda: not server.connections))
        await bounded(until(lambda: alive() <= before, interval=0.05))
        assert server.registry.get_sample_value("statserver_connections") == 0
        assert server.registry.get_sample_value("statserver_connections_opened_total") == 5
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_shutdown_closes_with_1012_and_refuses_new_dials():
    server = await start_server()
    port = port_of(server)
    client = await connect(port)
    client.send_frame(encode_protobuf([stat("test-revision")]))
    [got] = await take(server, 1)

    stopped = server.stopService()
    # a stat the sender wrote before it read our close is delivered too (RFC 6455)
    client.send_frame(encode_protobuf([stat("test-revision2", "activator2")]))
    was_clean, code, reason = await bounded(client.closed)
    assert code == 1012
    [late] = await take(server, 1)
    assert same_stat(late, stat("test-revision2", "activator2"))
    await bounded(stopped)
    assert server.stats.pending == []
    assert server.metrics.stats_received.value("protobuf") == 2
    assert server.registry.get_sample_value("statserver_frames_after_shutdown_total") == 1

    with pytest.raises((HandshakeFailed, ConnectionRefusedError)):
        await connect(port)


@pytest_twisted.ensureDeferred
async def test_shutdown_waits_for_the_consumer_to_take_what_is_queued():
    server = await start_server(shutdown_timeout=5.0)
    client = await connect(port_of(server))
    client.send_frame(encode_protobuf([stat(f"r{i}") for i in range(5)]))
    await bounded(until(lambda: len(server.stats.pending) == 5))
    stopped = server.stopService()
    await bounded(until(lambda: server.stopping))
    assert not stopped.called
    got = await take(server, 5)
    assert [s.name for s in got] == [f"r{i}" for i in range(5)]
    await bounded(stopped)
    await bounded(client.closed)


@pytest_twisted.ensureDeferred
async def test_shutdown_is_bounded_by_its_timeout():
    server = await start_server(shutdown_timeout=0.3)
    client = await connect(port_of(server))
    client.send_frame(encode_protobuf([stat("never-taken")]))
    await bounded(until(lambda: len(server.stats.pending) == 1))
    start = reactor.seconds()
    await bounded(server.stopService(), 5)
    assert reactor.seconds() - start < 3
    await bounded(client.closed)


@pytest_twisted.ensureDeferred
async def test_healthz_says_503_once_stopping():
    server = await start_server(shutdown_timeout=5.0)
    port = port_of(server)
    pool = HTTPConnectionPool(reactor, persistent=True)
    try:
        client = await connect(port)
        client.send_frame(encode_protobuf([stat("queued")]))
        await bounded(until(lambda: len(server.stats.pending) == 1))
        # a kept-alive HTTP connection made before shutdown can still ask
        code, _, _ = await http_get(port, b"/healthz", pool=pool)
        assert code == 200
        stopped = server.stopService()
        code, _, body = await http_get(port, b"/healthz", pool=pool)
        assert (code, body) == (503, b"stopping\n")
        code, _, _ = await http_get(port, b"/", {b"Upgrade": [b"websocket"]}, pool)
        assert code == 503  # no new WebSocket either
        await take(server, 1)
        await bounded(stopped)
        await bounded(client.closed)
    finally:
        await bounded(pool.closeCachedConnections())


# ---- bucket ownership ----


@pytest.mark.parametrize(
    "host,accepted",
    [
        ("autoscaler-bucket-00-of-02.knative-serving", True),  # owned
        ("autoscaler-bucket-01-of-02.knative-serving", False),  # not owned
        ("autoscaler.knative-serving", True),  # not a bucket host
        ("127.0.0.1", True),  # an IP address
    ],
)
@pytest_twisted.ensureDeferred
async def test_bucket_host(host, accepted):
    owners = BucketOwners(names=["autoscaler-bucket-00-of-02"])
    server = await start_server(bucket_owners=owners)
    try:
        if accepted:
            client = await connect(port_of(server), host=host)
            client.send_frame(encode_protobuf([stat("r")]))
            [got] = await take(server, 1)
            assert got.name == "r"
            client.sendClose()
            await bounded(client.closed)
        else:
            with pytest.raises(HandshakeFailed):
                await connect(port_of(server), host=host)
            assert server.registry.get_sample_value("statserver_bucket_refusals_total") == 1
            # Knative's answer: 200 without upgrading
            upgrade = {
                b"Host": [host.encode()],
                b"Upgrade": [b"websocket"],
                b"Sec-WebSocket-Version": [b"13"],
                b"Sec-WebSocket-Key": [b"dGhlIHNhbXBsZSBub25jZQ=="],
            }
            code, _, body = await http_get(port_of(server), b"/", upgrade)
            assert (code, body) == (200, b"")
    finally:
        await bounded(server.stopService())


def test_bucket_owners_file_reload(tmp_path):
    path = tmp_path / "buckets"
    path.write_text("# owned here\nautoscaler-bucket-00-of-02\n\n")
    owners = BucketOwners(names=["autoscaler-bucket-03-of-04"], path=str(path))
    assert owners.owns_host("autoscaler-bucket-00-of-02.knative-serving.svc:8080")
    assert owners.owns_host("autoscaler-bucket-03-of-04")
    assert not owners.owns_host("autoscaler-bucket-01-of-02.knative-serving")
    assert owners.owns_host("[::1]:8080")
    path.write_text("autoscaler-bucket-01-of-02\n")
    assert owners.reload()
    assert owners.owns_host("autoscaler-bucket-01-of-02.knative-serving")
    assert not owners.owns_host("autoscaler-bucket-00-of-02.knative-serving")
    path.unlink()
    assert not owners.reload()  # keeps the old set
    assert owners.owns_host("autoscaler-bucket-01-of-02.knative-serving")


@pytest_twisted.ensureDeferred
async def test_shutdown_drain_ends_after_the_consumer_has_recorded_what_it_took():
    # The command stops its consumer (closing the sinks) once the server's stopService
    # fires. That must not happen between the consumer taking the last stats and
    # recording them.
    server = StatsServer(None, reactor=reactor)  # never started: the queue is the only step
    sent = [StatMessage("ns", f"rev-{i}", "pod") for i in range(3)]
    server.stats.put_many(sent)
    sink = ClosingSink()
    consumer = StatsConsumer(server.stats, [sink], clock=reactor)
    stopped = server.stopService()
    stopped.addCallback(lambda _: consumer.stopService())  # closes the sink
    consumer.startService()  # takes the three at once
    await bounded(stopped)
    assert sink.closed
    assert sink.stats == sent
    assert sink.late == []
