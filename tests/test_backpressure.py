"""A consumer far slower than its senders: every stat arrives, in order per connection;
the queue stays bounded because the server stops reading; paused connections survive
the server's own keepalive pings."""

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from wsclient import bounded, connect, port_of, start_server, until

from statserver.model import StatMessage
from statserver.wire import encode_protobuf

QUEUE_SIZE = 100
CONNECTIONS = 3
FRAMES = 600  # per connection
PER_FRAME = 10
READ_SIZE = 65536  # what one read of a Twisted TCP transport may hand autobahn


def frame(conn, i):
    return encode_protobuf(
        [
            StatMessage(f"ns-{conn}", f"rev-{i}-{j}", f"pod-{conn}", request_count=float(i))
            for j in range(PER_FRAME)
        ]
    )


@pytest_twisted.ensureDeferred
async def test_slow_consumer_gets_everything_with_a_bounded_queue():
    # the server's pings time out after 2 × 0.5 + 1 = 2 s unanswered
    ping_interval = 0.5
    server = await start_server(queue_size=QUEUE_SIZE, ping_interval=ping_interval)
    try:
        clients = [await connect(port_of(server)) for _ in range(CONNECTIONS)]
        frame_size = len(frame(0, 0))
        for c, client in enumerate(clients):
            for i in range(FRAMES):
                client.send_frame(frame(c, i))

        total = CONNECTIONS * FRAMES * PER_FRAME
        # Frames read after the queue filled are held undecoded: the queue never holds
        # more than queue_size plus the stats of the one frame that filled it ...
        bound = QUEUE_SIZE - 1 + PER_FRAME
        # ... and the held frames, what every connection had already read.
        held_bound = CONNECTIONS * (READ_SIZE // frame_size + 1)

        got = {c: [] for c in range(CONNECTIONS)}
        max_pending = max_held = 0
        seen_paused = 0
        for n in range(total):
            max_pending = max(max_pending, len(server.stats.pending))
            max_held = max(max_held, server.frames_held)
            s = await bounded(server.stats.get())
            got[int(s.namespace[3:])].append(s)
            if n % 100 == 0:  # the consumer is slow: the senders get ahead
                await deferLater(reactor, 0.01, lambda: None)
                if server.paused:
                    seen_paused += 1
                    readers = reactor.getReaders()
                    assert all(conn.transport not in readers for conn in server.connections)
                    if seen_paused == 1:  # stay paused until the server's ping timeout fired
                        await bounded(until(lambda: all(
                            conn.ping_timed_out_while_paused for conn in server.connections)))

        assert seen_paused >= 2
        assert max_pending <= bound
        assert 0 < max_held <= held_bound
        for c in range(CONNECTIONS):
            want = [(f"rev-{i}-{j}", float(i)) for i in range(FRAMES) for j in range(PER_FRAME)]
            assert [(s.name, s.request_count) for s in got[c]] == want
        assert server.registry.get_sample_value("statserver_backpressure_pauses_total") >= 2
        assert not server.paused
        assert server.registry.get_sample_value("statserver_backpressure_paused") == 0
        # nobody was dropped by our keepalive while paused
        assert len(server.connections) == CONNECTIONS
        assert not any(client.closed.called for client in clients)
        readers = reactor.getReaders()
        assert all(conn.transport in readers for conn in server.connections)
        for client in clients:
            client.sendClose()
            await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_connection_opened_while_paused_is_paused_too():
    server = await start_server(queue_size=5)
    try:
        first = await connect(port_of(server))
        first.send_frame(frame(0, 0))  # 10 stats: over the queue size
        await bounded(until(lambda: server.paused))
        second = await connect(port_of(server))
        await bounded(until(lambda: len(server.connections) == 2))
        readers = reactor.getReaders()
        assert all(conn.transport not in readers for conn in server.connections)
        second.send_frame(frame(1, 0))
        got = [await bounded(server.stats.get()) for _ in range(20)]
        assert [s.namespace for s in got] == ["ns-0"] * 10 + ["ns-1"] * 10
        for client in (first, second):
            client.sendClose()
            await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_frames_held_at_shutdown_are_still_delivered():
    server = await start_server(queue_size=5, shutdown_timeout=5.0)
    client = await connect(port_of(server))
    for i in range(20):  # one write: the server reads them together
        client.send_frame(frame(0, i))
    await bounded(until(lambda: server.paused and server.frames_held))
    held = server.frames_held
    queued = len(server.stats.pending)
    stopped = server.stopService()
    got = [await bounded(server.stats.get()) for _ in range(len(server.stats.pending))]
    await bounded(stopped)
    await bounded(client.closed)
    assert server.stats.pending == []
    # a prefix of what was sent, in order, with every held frame's stats
    assert len(got) >= queued + held * PER_FRAME
    want = [(f"rev-{i}-{j}", float(i)) for i in range(20) for j in range(PER_FRAME)]
    assert [(s.name, s.request_count) for s in got] == want[: len(got)]
    assert server.metrics.stats_received.value("protobuf") == len(got)
