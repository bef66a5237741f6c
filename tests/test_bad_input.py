"""Bad input never hurts anyone else: bad frames are counted and logged (rate limited)
and the connection is kept; an oversize message closes that connection with 1009."""

import socket

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from wsclient import (
    StatsClientProtocol,
    bounded,
    connect,
    http_get,
    port_of,
    start_server,
    take,
    until,
)

from statserver.model import StatMessage
from statserver.wire import encode_protobuf

GOOD = encode_protobuf([StatMessage("ns", "after-the-bad-one", "pod", request_count=1.0)])


def errors(server, fmt):
    return server.registry.get_sample_value("statserver_decode_errors_total", {"format": fmt})


@pytest.mark.parametrize(
    "payload,binary,fmt",
    [
        (b"\x05\x01\x02\x03\x04\x05", True, "gob"),  # a gob message of garbage
        (b"\xff", True, "gob"),  # a truncated gob length
        (b"\x0a\x7f\x00", True, "protobuf"),  # truncated WireStatMessages
        (b"\x0a\x02\x0a\xff", True, "protobuf"),
        (b"hello", False, "json"),
        (b"{}", False, "json"),
        (b'{"Key": {"Namespace": 1}, "Stat": {}}', False, "json"),
        (b"\xff\xfe not utf-8", False, "json"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_frame_is_counted_and_the_connection_kept(payload, binary, fmt):
    server = await start_server()
    try:
        client = await connect(port_of(server))
        client.send_frame(payload, binary=binary)
        client.send_frame(GOOD)
        [got] = await take(server, 1)
        assert got.name == "after-the-bad-one"
        assert errors(server, fmt) == 1
        good_frames = 1 if fmt == "protobuf" else 0
        assert server.metrics.frames.value(fmt) == 1 + good_frames
        assert not client.closed.called
        _, _, body = await http_get(port_of(server), b"/metrics")
        assert f'statserver_decode_errors_total{{format="{fmt}"}} 1.0'.encode() in body
        client.sendClose()
        closed = await bounded(client.closed)
        assert closed[1] == 1000, closed
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_bad_frame_logs_are_rate_limited(logged):
    server = await start_server()
    try:
        client = await connect(port_of(server))
        for _ in range(200):
            client.send_frame(b"garbage", binary=False)
        client.send_frame(GOOD)
        await take(server, 1)
        assert errors(server, "json") == 200
        assert 1 <= len(logged.containing("Bad frame")) <= 10
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest.mark.parametrize("fragment", [None, 100])
@pytest_twisted.ensureDeferred
async def test_oversize_message_closes_with_1009(fragment):
    server = await start_server(max_message_size=1000)
    try:
        bystander = await connect(port_of(server))
        client = await connect(port_of(server))
        client.sendMessage(b"\x0a" + b"x" * 2000, isBinary=True, fragmentSize=fragment)
        was_clean, code, reason = await bounded(client.closed)
        assert code == 1009
        await bounded(until(lambda: server.registry.get_sample_value(
            "statserver_oversize_closes_total") == 1))
        # the other connection carries on
        bystander.send_frame(GOOD)
        [got] = await take(server, 1)
        assert got.name == "after-the-bad-one"
        assert server.stats.pending == []
        bystander.sendClose()
        await bounded(bystander.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_message_in_fragments_is_one_message():
    server = await start_server(max_message_size=len(GOOD))
    try:
        client = await connect(port_of(server))
        client.sendMessage(GOOD, isBinary=True, fragmentSize=7)
        [got] = await take(server, 1)
        assert got.name == "after-the-bad-one"
        assert server.metrics.frames.value("protobuf") == 1
        client.sendClose()
        assert (await bounded(client.closed))[1] == 1000
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_message_at_the_limit_is_accepted():
    limit = len(GOOD)
    server = await start_server(max_message_size=limit)
    try:
        client = await connect(port_of(server))
        client.send_frame(GOOD)
        [got] = await take(server, 1)
        assert got.name == "after-the-bad-one"
        client.sendClose()
        assert (await bounded(client.closed))[1] == 1000
    finally:
        await bounded(server.stopService())


# ---- keepalive ----


class _PingCounting(StatsClientProtocol):
    def __init__(self):
        super().__init__()
        self.pinged = Deferred()
        self.ponged = Deferred()

    def onPing(self, payload):
        super().onPing(payload)
        if not self.pinged.called:
            self.pinged.callback(payload)

    def onPong(self, payload):
        if not self.ponged.called:
            self.ponged.callback(payload)


@pytest_twisted.ensureDeferred
async def test_keepalive_tcp_option_pings_and_pongs():
    server = await start_server(ping_interval=0.5)
    try:
        client = await connect(port_of(server), protocol=_PingCounting)
        await bounded(until(lambda: len(server.connections) == 1))
        [conn] = server.connections
        handle = conn.transport.getHandle()
        assert handle.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        await bounded(client.pinged, 5)  # the server pings us
        client.sendPing(b"knative")
        assert await bounded(client.ponged, 5) == b"knative"  # and answers our pings
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_json_integer_beyond_float_range_is_a_bad_frame_not_a_decoder_bug(logged):
    server = await start_server()
    try:
        client = await connect(port_of(server))
        huge = b'{"Key":{"Namespace":"ns","Name":"r"},"Stat":{"request_count":1%s}}' % (
            b"0" * 309)
        client.send_frame(huge, binary=False)
        client.send_frame(GOOD)
        [got] = await take(server, 1)
        assert got.name == "after-the-bad-one"
        assert errors(server, "json") == 1
        [event] = logged.events_containing("Bad frame")
        assert "out of range" in event["reason"]
        assert "log_failure" not in event
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_decoder_bug_is_logged_with_its_traceback_and_counted(monkeypatch, logged):
    from statserver.server import service as server_module

    real = server_module.decode_frame

    def buggy(payload, is_binary, received_at=None):
        if payload == b"boom":
            raise ZeroDivisionError("a bug in a decoder")
        return real(payload, is_binary, received_at)

    monkeypatch.setattr(server_module, "decode_frame", buggy)
    server = await start_server()
    try:
        client = await connect(port_of(server))
        client.send_frame(b"boom", binary=False)
        client.send_frame(GOOD)
        [got] = await take(server, 1)
        assert got.name == "after-the-bad-one"
        assert errors(server, "json") == 1
        [event] = logged.events_containing("Bad frame")
        assert event["log_failure"].check(ZeroDivisionError)
        assert "a bug in a decoder" in event["log_failure"].getTraceback()
        assert not client.closed.called
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest.mark.parametrize("binary", [False, True])
@pytest_twisted.ensureDeferred
async def test_a_json_or_gob_frame_bigger_than_one_stat_is_refused_undecoded(binary):
    from statserver.wire import ONE_STAT_MAX_BYTES
    from statserver.wire.gobstat import encode_stat_frame

    stat = StatMessage("ns", "padded", "pod")
    if binary:  # a gob stream with a 70 KB pod name: decodable, far over one stat's size
        frame = encode_stat_frame(stat._replace(pod_name="p" * 70_000))
    else:  # valid JSON, padded with whitespace
        frame = b'{"Key":{"Namespace":"ns","Name":"padded"},' + b" " * 70_000 + b'"Stat":{}}'
    assert len(frame) > ONE_STAT_MAX_BYTES
    fmt = "gob" if binary else "json"
    server = await start_server()
    try:
        client = await connect(port_of(server))
        client.send_frame(frame, binary=binary)
        client.send_frame(GOOD)
        [got] = await take(server, 1)
        assert got.name == "after-the-bad-one"
        assert errors(server, fmt) == 1
        assert not client.closed.called
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())
