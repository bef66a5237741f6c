"""Big protobuf frames are decoded a slice per reactor turn: the server goes on serving
its other connections and probes meanwhile, delivers every stat in order and keeps the
queue bounded; entries without a namespace and name are not stats."""

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from wsclient import bounded, connect, http_get, port_of, start_server, until

from statserver.model import StatMessage
from statserver.wire import PROTOBUF_PIECE_BYTES, encode_protobuf


def entries(n, namespace="a"):
    """A protobuf frame of ``n`` minimal stats ``namespace/<i>`` (9 to 13 bytes each)."""
    return encode_protobuf([StatMessage(namespace, str(i)) for i in range(n)])


def names(stats):
    return [s.name for s in stats]


@pytest_twisted.ensureDeferred
async def test_other_connections_are_served_while_a_big_frame_is_decoded():
    big = entries(90_000)  # 1 MiB
    assert len(big) > 1_000_000
    server = await start_server(queue_size=1_000_000, max_message_size=len(big))
    try:
        sender = await connect(port_of(server))
        bystander = await connect(port_of(server))
        sender.send_frame(big)
        sender.send_frame(encode_protobuf([StatMessage("a", "after")]))
        await bounded(until(lambda: server.stats.pending))  # the big frame's first slice
        bystander.send_frame(encode_protobuf([StatMessage("b", "bystander")]))
        code, _, _ = await http_get(port_of(server), b"/healthz")
        assert code == 200
        await bounded(until(lambda: any(s.namespace == "b" for s in server.stats.pending)))
        from_a = [s for s in server.stats.pending if s.namespace == "a"]
        assert len(from_a) < 90_000  # served between two slices of the big frame

        await bounded(until(lambda: len(server.stats.pending) == 90_002))
        from_a = [s for s in server.stats.pending if s.namespace == "a"]
        assert names(from_a) == [*map(str, range(90_000)), "after"]  # in order, all
        assert server.metrics.frames.value("protobuf") == 3
        assert server.metrics.stats_received.value("protobuf") == 90_002
        # the sender's figures (/api/v1/connections) count the big frame once
        [info] = [i for i in server.connection_infos() if i.frames == 2]
        assert info.stats == 90_001
        sender.sendClose()
        bystander.sendClose()
        await bounded(sender.closed)
        await bounded(bystander.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_mib_of_empty_entries_is_rejected_not_queued():
    empty = b"\x0a\x02\x1a\x00" * 262_140  # entries with an empty stat and no key
    server = await start_server(max_message_size=len(empty))
    try:
        client = await connect(port_of(server))
        client.send_frame(empty)
        client.send_frame(encode_protobuf([StatMessage("ns", "good")]))
        [got] = [await bounded(server.stats.get())]
        assert got.name == "good"
        assert server.stats.pending == []
        assert server.registry.get_sample_value(
            "statserver_stats_rejected_total", {"reason": "empty"}) == 262_140
        assert server.metrics.stats_received.value("protobuf") == 1
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_big_frame_bad_at_its_end_is_refused_whole():
    bad = entries(20_000) + b"\x0a\x05\x0a\x03\xff\xfe\xfd"  # a namespace not UTF-8
    assert len(bad) > 10 * PROTOBUF_PIECE_BYTES
    server = await start_server(max_message_size=len(bad))
    try:
        client = await connect(port_of(server))
        client.send_frame(bad)
        client.send_frame(encode_protobuf([StatMessage("ns", "good")]))
        got = await bounded(server.stats.get())
        assert got.name == "good"  # and nothing of the bad frame before it
        assert server.registry.get_sample_value(
            "statserver_decode_errors_total", {"format": "protobuf"}) == 1
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_big_frames_keep_the_queue_bounded_and_lose_nothing():
    queue_size = 500
    frames = [entries(10_000, namespace=f"n{k}") for k in range(3)]
    server = await start_server(queue_size=queue_size, max_message_size=200_000)
    try:
        clients = [await connect(port_of(server)) for _ in range(2)]
        for k, f in enumerate(frames):
            clients[k % 2].send_frame(f)
        got = []
        most = 0
        while len(got) < 30_000:
            most = max(most, len(server.stats.pending))
            got.append(await bounded(server.stats.get()))
            if len(got) % 1000 == 0:
                await deferLater(reactor, 0.001, lambda: None)  # a slow consumer
        for k in range(3):
            assert names(s for s in got if s.namespace == f"n{k}") == list(map(str, range(10_000)))
        # at most the stats of one slice beyond the bound (a slice: 16 KiB of entries)
        assert most <= queue_size + PROTOBUF_PIECE_BYTES // 9
        assert server.registry.get_sample_value("statserver_backpressure_pauses_total") >= 1
        for client in clients:
            client.sendClose()
            await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_shutdown_waits_for_a_frame_being_decoded():
    big = entries(90_000)
    server = await start_server(queue_size=1_000_000, max_message_size=len(big))
    client = await connect(port_of(server))
    client.send_frame(big)
    await bounded(until(lambda: server.stats.pending))
    taken = []

    def consume():  # the consumer the command runs: takes what is queued, until empty
        taken.extend(server.stats.take_all())
        if len(taken) < 90_000:
            reactor.callLater(0, consume)

    consume()
    await bounded(server.stopService())
    assert names(taken) == list(map(str, range(90_000)))


def test_the_default_max_message_size_takes_10000_revisions_of_the_longest_names():
    from statserver.aggregation.aggregator import DEFAULT_MAX_REVISIONS
    from statserver.server.service import MAX_MESSAGE_SIZE, StatsServer
    from statserver.tap import Options

    longest = [StatMessage("n" * 63, f"{i:063d}", "p" * 253, 1.5, 0.5, 3.0, 1.0, 86400.5,
                           timestamp=1_764_000_000 * 1_000_000_000)
               for i in range(DEFAULT_MAX_REVISIONS)]
    frame = encode_protobuf(longest)
    assert len(frame) == 4_430_000  # the arithmetic of docs/server.md
    assert len(frame) <= MAX_MESSAGE_SIZE
    options = Options()
    options.parseOptions([])
    assert options["max-message-size"] == MAX_MESSAGE_SIZE
    assert StatsServer(None, reactor=reactor).max_message_size == MAX_MESSAGE_SIZE


@pytest_twisted.ensureDeferred
async def test_the_1009_log_line_names_the_peer_and_the_size(logged):
    server = await start_server(max_message_size=1000)
    try:
        client = await connect(port_of(server))
        port = client.transport.getHost().port
        client.sendMessage(b"\x0a" + b"x" * 2000, isBinary=True)
        _, code, _ = await bounded(client.closed)
        assert code == 1009
        [line] = logged.containing(" with 1009")
        assert f"Closing tcp4:127.0.0.1:{port} with 1009" in line
        assert "2001 bytes" in line and "1000 bytes of --max-message-size" in line
    finally:
        await bounded(server.stopService())
