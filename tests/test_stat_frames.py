"""Every frame of ``$STAT_FRAMES``, sent over a real WebSocket, is delivered as its
README says, in order, with the server's receive time."""

import pytest
import pytest_twisted
from shared_data import ERAS, read_frames
from twisted.internet import reactor
from wsclient import bounded, connect, delivered, port_of, start_server, take


@pytest.mark.parametrize("name", sorted(ERAS))
@pytest_twisted.ensureDeferred
async def test_frames_delivered_as_readme_says(name):
    frames = read_frames(name)
    want = [s for f in frames for s in f["stats"]]
    server = await start_server()
    try:
        client = await connect(port_of(server))
        before = reactor.seconds()
        for f in frames:
            client.send_frame(f["payload"], binary=f["opcode"] == "binary")
        got = await take(server, len(want))
        after = reactor.seconds()
        assert [delivered(s) for s in got] == want
        for s in got:
            assert before * 1e9 - 1e6 <= s.received_at <= after * 1e9 + 1e6
        fmt = ERAS[name]
        assert server.metrics.frames.value(fmt) == len(frames)
        assert server.metrics.stats_received.value(fmt) == len(want)
        assert server.registry.get_sample_value(
            "statserver_decode_errors_total", {"format": fmt}) == 0
        assert server.stats.pending == []
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_every_era_interleaved_on_one_connection():
    frames = [f for name in sorted(ERAS) for f in read_frames(name)]
    frames = frames[::2] + frames[1::2]
    want = [s for f in frames for s in f["stats"]]
    server = await start_server()
    try:
        client = await connect(port_of(server))
        for f in frames:
            client.send_frame(f["payload"], binary=f["opcode"] == "binary")
        got = await take(server, len(want))
        assert [delivered(s) for s in got] == want
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())
