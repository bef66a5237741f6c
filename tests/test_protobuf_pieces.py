"""``statserver.wire.protobuf_pieces``, the cutting of a big protobuf frame into pieces
of whole top-level fields: fields a newer sender may add (of every wire type) travel in
the pieces, and a frame no parser would take is refused while it is cut."""

import struct

import pytest

from statserver.model import StatMessage
from statserver.wire import FrameError, decode_protobuf, encode_protobuf, protobuf_pieces

STATS = [StatMessage("ns", f"rev-{n}", "activator-1", 1.0, 0.0, 2.0, 0.0) for n in range(40)]

# Top-level fields a future WireStatMessages could carry, numbered past ours.
FIXED64 = bytes([9 << 3 | 1]) + struct.pack("<d", 1.5)
FIXED32 = bytes([10 << 3 | 5]) + struct.pack("<f", 2.5)
VARINT = bytes([11 << 3 | 0, 0x96, 0x01])
LONG_TAG = bytes([(300 << 3 | 0) & 0x7F | 0x80, 300 >> 4, 0x01])  # field 300, a 2-byte tag


def _stats(pieces):
    return [stat for piece in pieces for stat in decode_protobuf(piece)]


def test_unknown_fields_of_every_wire_type_are_cut_whole_and_the_stats_kept():
    frame = b""
    for n in range(0, len(STATS), 10):
        frame += encode_protobuf(STATS[n:n + 10]) + FIXED64 + FIXED32 + VARINT + LONG_TAG
    pieces = list(protobuf_pieces(frame, size=64))
    assert len(pieces) > 4
    assert b"".join(pieces) == frame
    assert _stats(pieces) == decode_protobuf(frame) == STATS


@pytest.mark.parametrize(
    "tail, reason",
    [
        (bytes([9 << 3 | 3]), "wire type 3 at the top level"),  # a group start
        (bytes([9 << 3 | 7]), "wire type 7 at the top level"),
        (FIXED64[:5], "runs past the frame's end"),
        (FIXED32[:3], "runs past the frame's end"),
        (bytes([11 << 3 | 0, 0x96]), "truncated varint"),
        (bytes([12 << 3 | 2, 0x80]), "truncated varint"),  # a length that never ends
    ],
)
def test_a_frame_no_parser_takes_is_refused_while_cut(tail, reason):
    pieces = protobuf_pieces(encode_protobuf(STATS[:3]) + tail, size=16)
    with pytest.raises(FrameError, match=reason):
        list(pieces)
