"""The server unmasks client frames itself (statserver.server.protocol.unmask): the same bytes
as autobahn's masker, whatever the length and wherever a read splits a frame."""

import os
import struct

import pytest
import pytest_twisted
from autobahn.websocket.xormasker import create_xor_masker
from hypothesis import given
from hypothesis import strategies as st
from stats import run
from wsclient import bounded, connect, port_of, start_server, take, until

from statserver.server.framing import BIGINT_UNMASK_MAX, unmask
from statserver.wire import encode_protobuf


@given(
    data=st.binary(max_size=3 * BIGINT_UNMASK_MAX),
    mask=st.binary(min_size=4, max_size=4),
    split=st.integers(min_value=0),
)
def test_unmask_is_autobahns_xor_from_any_offset(data, mask, split):
    split %= len(data) + 1
    masker = create_xor_masker(mask, len(data))
    want = masker.process(data[:split]) + masker.process(data[split:])
    assert unmask(data[:split], mask) + unmask(data[split:], mask, split) == want


def masked_frame(opcode, payload, mask):
    """One final client frame, as a sender puts it on the wire."""
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    else:
        header = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", n)
    key = (mask * (n // 4 + 1))[:n]
    return header + mask + bytes(a ^ b for a, b in zip(payload, key, strict=True))


@pytest.mark.parametrize("count", [1, 100])  # a small frame and one of 4-5 KB
@pytest_twisted.ensureDeferred
async def test_a_frame_over_several_reads(count):
    sent = run(count, pod="pod", concurrency=0.0, received_at=None)
    payload = encode_protobuf(sent)
    assert (len(payload) > BIGINT_UNMASK_MAX) == (count == 100)
    server = await start_server()
    try:
        client = await connect(port_of(server))
        await bounded(until(lambda: len(server.connections) == 1))
        [conn] = server.connections
        wire = masked_frame(0x2, payload, os.urandom(4))
        # as if the kernel handed the frame over in four reads, the payload split at odd
        # offsets so that each piece starts at another place in the mask
        cuts = [0, 1, 9, len(wire) // 2 + 1, len(wire)]
        for start, end in zip(cuts, cuts[1:], strict=False):
            conn.dataReceived(wire[start:end])
        got = await take(server, count)
        assert [s._replace(received_at=None) for s in got] == sent
        # a control frame over two reads: the close code must come through unmasked
        close = masked_frame(0x8, struct.pack("!H", 1000) + b"bye", os.urandom(4))
        conn.dataReceived(close[:7])
        conn.dataReceived(close[7:])
        _, code, _ = await bounded(client.closed)
        assert code == 1000
    finally:
        await bounded(server.stopService())
