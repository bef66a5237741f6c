"""Peers that abuse the connection (issue 10): slow headers, bodies, duplicate or
disguised hosts, ping floods without reading, pong floods, too many connections, and a
sender that keeps writing after our close. Each on a real socket on 127.0.0.1."""

import socket

import pytest_twisted
from twisted.internet import reactor
from wsclient import (
    bounded,
    client_frame,
    connect,
    http_get,
    port_of,
    raw_connect,
    raw_websocket,
    start_server,
    take,
    until,
    upgrade_request,
)

from statserver.bucket_owners import BucketOwners, bucket_of
from statserver.model import StatMessage
from statserver.wire import encode_protobuf

GOOD = encode_protobuf([StatMessage("ns", "rev", "pod", request_count=1.0)])


def refused(server, reason):
    return server.registry.get_sample_value(
        "statserver_connections_refused_total", {"reason": reason})


# ---- point 12: slowloris, max connections, backlog ----


@pytest_twisted.ensureDeferred
async def test_headers_must_complete_within_the_deadline_even_when_bytes_trickle():
    server = await start_server(header_timeout=1.0)
    try:
        client = await raw_connect(port_of(server))
        request = upgrade_request()
        sent = 0

        def trickle():  # one byte every 0.2 s: the idle timeout would never fire
            nonlocal sent
            if not client.lost.called and sent < len(request) - 2:
                client.transport.write(request[sent:sent + 1])
                sent += 1
                reactor.callLater(0.2, trickle)

        trickle()
        answer = await bounded(client.lost, 5)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert refused(server, "header-timeout") == 1
        assert server.site.open_connections == 0
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_past_max_connections_an_upgrade_is_answered_503_and_probes_still_pass():
    server = await start_server(max_connections=2)
    try:
        clients = [await connect(port_of(server)) for _ in range(2)]
        late = await raw_connect(port_of(server))
        late.transport.write(upgrade_request())
        answer = await bounded(late.lost)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert refused(server, "max-connections") == 1
        code, _, body = await http_get(port_of(server), b"/healthz")
        assert (code, body) == (200, b"ok\n")
        clients[0].sendClose()
        await bounded(clients[0].closed)
        await bounded(until(lambda: len(server.connections) == 1))
        again = await connect(port_of(server))  # room again
        assert again.state == again.STATE_OPEN
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_past_the_open_files_bound_a_connection_is_answered_503_not_reset():
    server = await start_server()
    try:
        server.site.max_open = server.site.open_connections + 1
        first = await raw_connect(port_of(server))
        await bounded(until(lambda: server.site.open_connections == 1))
        second = await raw_connect(port_of(server))
        answer = await bounded(second.lost)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert refused(server, "file-descriptors") == 1
        first.transport.loseConnection()
        await bounded(until(lambda: server.site.open_connections == 0))
    finally:
        await bounded(server.stopService())


def test_default_port_has_a_listen_backlog_above_twisteds_50():
    from statserver.tap import with_backlog

    assert with_backlog("tcp:8080") == "tcp:8080:backlog=4096"
    assert with_backlog("tcp6:port=8080:interface=\\:\\:") == (
        "tcp6:port=8080:interface=\\:\\::backlog=4096")
    assert with_backlog("tcp:8080:backlog=10") == "tcp:8080:backlog=10"
    assert with_backlog("systemd:domain=INET:index=0") == "systemd:domain=INET:index=0"


# ---- point 13: request bodies ----


@pytest_twisted.ensureDeferred
async def test_a_request_body_is_refused_413_before_it_is_read():
    server = await start_server()
    try:
        for framing in (b"Content-Length: 50000000", b"Transfer-Encoding: chunked"):
            client = await raw_connect(port_of(server))
            client.transport.write(
                b"POST /healthz HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % framing + b"x" * 1000
            )
            answer = await bounded(client.lost, 5)
            assert answer.startswith(b"HTTP/1.1 413"), answer
        assert refused(server, "request-body") == 2
    finally:
        await bounded(server.stopService())


# ---- point 14: routing as Go's net/http ----


@pytest_twisted.ensureDeferred
async def test_bucket_routing_follows_the_request_line_then_a_single_host():
    owners = BucketOwners(names=["autoscaler-bucket-00-of-02"])
    server = await start_server(bucket_owners=owners)
    own = "autoscaler-bucket-00-of-02.knative-serving"
    other = "autoscaler-bucket-01-of-02.knative-serving"

    async def answer(request):
        client = await raw_connect(port_of(server))
        client.transport.write(request)
        await client.until_received(b"\r\n\r\n")
        client.transport.loseConnection()
        return client.received.split(b"\r\n", 1)[0]

    try:
        # the request line's authority wins over Host
        assert await answer(upgrade_request(host=own, path=f"http://{other}/")) == (
            b"HTTP/1.1 200 OK")
        assert await answer(upgrade_request(host=other, path=f"http://{own}:8080/")) == (
            b"HTTP/1.1 101 Switching Protocols")
        # two Host headers are a 400
        two = upgrade_request(host=other, extra=f"Host: {own}\r\n".encode())
        assert await answer(two) == b"HTTP/1.1 400 Bad Request"
        assert refused(server, "duplicate-host") == 1
        # a bracketed host is parsed
        assert await answer(upgrade_request(host="[autoscaler-bucket-01-of-02]:8080")) == (
            b"HTTP/1.1 200 OK")
        assert server.registry.get_sample_value("statserver_bucket_refusals_total") == 2
    finally:
        await bounded(server.stopService())


def test_bracketed_hosts_are_parsed():
    assert bucket_of("[autoscaler-bucket-01-of-02]:8080") == "autoscaler-bucket-01-of-02"
    assert bucket_of("[::1]:8080") is None


# ---- points 10 and 11: ping floods that never read, pong floods ----


@pytest_twisted.ensureDeferred
async def test_pings_from_a_peer_that_never_reads_cannot_grow_the_outgoing_buffer():
    from statserver.server.protocol import MAX_OUTGOING, outgoing_bytes

    server = await start_server()
    try:
        client = await raw_websocket(port_of(server))
        client.transport.pauseProducing()  # never read what the server sends
        client.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        [conn] = server.connections
        most = 0
        ping = client_frame(9, b"p" * 125)
        for _ in range(40):  # 40 × 2500 pings: 13 MB of pongs if all were answered
            client.transport.write(ping * 2500)
            await bounded(until(lambda: not client.transport.dataBuffer
                                and not client.transport._tempDataLen, interval=0.001))
            if conn.transport is not None:
                most = max(most, outgoing_bytes(conn.transport))
            if refused(server, "outgoing-buffer"):
                break  # closed with 1008: nothing more to see
        assert most <= MAX_OUTGOING + 200
        assert refused(server, "outgoing-buffer") == 1
        await bounded(until(lambda: not server.connections))  # dropped, after its 1008
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_pong_flood_logs_a_few_lines_not_one_a_pong(logged):
    server = await start_server(ping_interval=1.0)
    try:
        client = await raw_websocket(port_of(server))
        await client.until_received(b"\x89", 5)  # the server's ping: it awaits a pong
        client.transport.write(client_frame(10, b"not yours") * 5000 + client_frame(2, GOOD))
        [got] = await take(server, 1)
        assert got.name == "rev"
    finally:
        await bounded(server.stopService())
    assert 1 <= len(logged.containing("non-pending pong")) <= 5


# ---- point 15: frames after our close ----


@pytest_twisted.ensureDeferred
async def test_frames_a_sender_writes_before_reading_our_close_are_delivered():
    server = await start_server(shutdown_timeout=5.0)
    client = await raw_websocket(port_of(server))
    stopped = server.stopService()
    await client.until_received(b"\x88")  # our close 1012 reached the sender
    assert client.received[2:4] == (1012).to_bytes(2, "big")
    # the sender had more to write before it read the close, then it replies
    client.transport.write(client_frame(2, GOOD) * 3 + client_frame(8, (1012).to_bytes(2, "big")))
    got = await take(server, 3)
    assert [s.name for s in got] == ["rev"] * 3
    await bounded(stopped)
    await bounded(client.lost)
    assert server.registry.get_sample_value("statserver_frames_after_shutdown_total") == 3


@pytest_twisted.ensureDeferred
async def test_default_max_connections_leaves_room_under_the_open_files_limit():
    import resource

    from statserver.server.channel import FD_RESERVE
    from statserver.server.service import PROBE_RESERVE

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    server = await start_server()
    try:
        assert server.site.max_open == soft - FD_RESERVE
        assert server.max_connections == soft - FD_RESERVE - PROBE_RESERVE
    finally:
        await bounded(server.stopService())
