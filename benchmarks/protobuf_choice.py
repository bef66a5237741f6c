"""Why ``statserver.wire`` decodes protobuf with the ``protobuf`` library: µs per
``WireStatMessages`` frame (10 stats) through the library (what ``formats`` uses) and
through a small pure-Python wire parser written here for the comparison.

    python benchmarks/protobuf_choice.py [--seconds 0.5] [--repeat 5]
"""

import argparse
import statistics
import struct

from _bench import machine, us_per_item
from google.protobuf.internal import api_implementation

from statserver import wire
from statserver.model import StatMessage

_NS = 1_000_000_000
_DOUBLE = struct.Struct("<d").unpack_from


def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def _skip(buf, pos, wire):
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    if wire == 5:
        return pos + 4
    raise ValueError(f"wire type {wire}")


def _stat(buf, pos, end):
    vals = ["", 0.0, 0.0, 0.0, 0.0, 0.0, None]
    while pos < end:
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if field == 1 and wire == 2:
            n, pos = _varint(buf, pos)
            vals[0] = buf[pos : pos + n].decode()
            pos += n
        elif 2 <= field <= 6 and wire == 1:
            vals[field - 1] = _DOUBLE(buf, pos)[0]
            pos += 8
        elif field == 7 and wire == 0:
            ts, pos = _varint(buf, pos)
            ts = ts - (1 << 64) if ts >= 1 << 63 else ts
            vals[6] = ts * _NS if ts else None
        else:
            pos = _skip(buf, pos, wire)
    if pos != end:
        raise ValueError("truncated")
    return vals


def hand_decode(payload, received_at=None):
    """``WireStatMessages`` → ``StatMessage``s, parsed byte by byte in Python."""
    buf = bytes(payload)
    out = []
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        if tag != 0x0A:
            pos = _skip(buf, pos, tag & 7)
            continue
        n, pos = _varint(buf, pos)
        mend = pos + n
        ns = name = ""
        stat = None
        while pos < mend:
            t, pos = _varint(buf, pos)
            if t in (0x0A, 0x12, 0x1A):
                m, pos = _varint(buf, pos)
                if t == 0x1A:
                    stat = _stat(buf, pos, pos + m)
                elif t == 0x0A:
                    ns = buf[pos : pos + m].decode()
                else:
                    name = buf[pos : pos + m].decode()
                pos += m
            else:
                pos = _skip(buf, pos, t & 7)
        if stat is not None:
            out.append(StatMessage(ns, name, *stat, received_at))
    return out


def frames():
    out = []
    for f in range(20):
        stats = [
            StatMessage(
                f"ns-{f % 3}",
                f"rev-{f}-{i}",
                f"activator-{f}",
                i + 0.25,
                i * 0.5,
                float(i),
                float(i % 13),
                i + 0.5,
                (1_552_572_567 + f) * _NS,
            )
            for i in range(10)
        ]
        out.append(wire.encode_protobuf(stats))
    return out


def per_frame_us(decode, data, seconds, repeat):
    return statistics.median(us_per_item(decode, data, seconds, repeat))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = frames()
    for payload in data:
        assert hand_decode(payload) == wire.decode_protobuf(payload)
    import google.protobuf

    print(f"machine: {machine()}")
    print(f"protobuf {google.protobuf.__version__} ({api_implementation.Type()} backend)")
    lib = per_frame_us(wire.decode_protobuf, data, args.seconds, args.repeat)
    hand = per_frame_us(hand_decode, data, args.seconds, args.repeat)
    print(f"protobuf library : {lib:7.2f} µs/frame of 10 stats (median of {args.repeat})")
    print(f"hand parser      : {hand:7.2f} µs/frame of 10 stats (median of {args.repeat})")
    print(f"hand / library   : {hand / lib:.2f}")


if __name__ == "__main__":
    main()
