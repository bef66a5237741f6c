"""Knative's ``WireStatMessages`` over protobuf (v0.17 and later senders), both ways,
and big frames cut into pieces that can be decoded one reactor turn at a time."""

from functools import partial
from operator import attrgetter

from google.protobuf.message import DecodeError as _ProtobufDecodeError

from statserver.constants import NS_PER_S, PROTOBUF
from statserver.model import StatMessage
from statserver.speedups import choose, compiled
from statserver.wire.errors import FrameError
from statserver.wire.stat_proto import WireStatMessages

# A protobuf frame carries a hundred stats and more: each is built without the
# NamedTuple's generated __new__ (about a tenth of the decoding time).
_new_stat = partial(tuple.__new__, StatMessage)
_protobuf_stat_fields = attrgetter(
    "pod_name", "average_concurrent_requests", "average_proxied_concurrent_requests",
    "request_count", "proxied_request_count", "process_uptime", "timestamp",
)


def decode_protobuf(payload, received_at=None):
    """The stats of a ``WireStatMessages`` frame, in order; entries without a stat are
    skipped (as Knative does, to allow for future schema changes)."""
    try:
        wire = WireStatMessages.FromString(bytes(payload))
    except (_ProtobufDecodeError, RuntimeError, ValueError) as e:
        raise FrameError(PROTOBUF, f"not WireStatMessages: {e}") from None
    out = []
    append = out.append
    for m in wire.messages:
        if not m.HasField("stat"):
            continue
        pod, concurrency, proxied_concurrency, count, proxied_count, uptime, ts = (
            _protobuf_stat_fields(m.stat))
        append(_new_stat((
            m.namespace, m.name, pod, concurrency, proxied_concurrency, count, proxied_count,
            uptime, ts * NS_PER_S if ts else None, received_at, None,
        )))  # fmt: skip
    return out


# The compiled decoder (statserver/_speedups.c) replaces the pure one above where it is
# built, unless STATSERVER_PURE=1; the pure one stays the fallback and the reference.
pure_decode_protobuf = decode_protobuf


def _pure_protobuf_reason(payload):
    try:
        pure_decode_protobuf(payload)
    except FrameError as e:
        return e.reason
    return None


def compiled_decode_protobuf():
    """``statserver._speedups.decode_protobuf``, set up to match the pure function under
    the protobuf release in use (its reason texts, and the two limits releases differ
    on); None where the extension is not built."""
    configure = compiled("configure")
    if configure is None:
        return None
    configure(
        frame_error=FrameError,
        stat_type=StatMessage,
        format_name=PROTOBUF,
        corrupt_reason=_pure_protobuf_reason(b"\x80"),
        utf8_reason=_pure_protobuf_reason(b"\x0a\x03\x0a\x01\xff"),
        # An entry's length as a 6-byte varint; a group holding field number 0.
        size_varint_bytes=5 if _pure_protobuf_reason(b"\x0a\x80\x80\x80\x80\x80\x00") else 10,
        field_zero_in_group=_pure_protobuf_reason(b"\x2b\x00\x00\x2c") is None,
    )
    return compiled("decode_protobuf")


#: ``pure_decode_protobuf``, compiled unless ``STATSERVER_PURE=1`` (or not built).
decode_protobuf = choose(compiled_decode_protobuf, pure_decode_protobuf)
IMPLEMENTATION = "pure" if decode_protobuf is pure_decode_protobuf else "compiled"
"""``"compiled"`` when frames are decoded by ``statserver._speedups``, else ``"pure"``
(not built, or ``STATSERVER_PURE=1``)."""


def encode_protobuf(messages):
    """``StatMessage``s as one ``WireStatMessages`` frame (``timestamp`` as whole Unix
    seconds where a stat has one)."""
    wire = WireStatMessages()
    for message in messages:
        entry = wire.messages.add(namespace=message.namespace, name=message.name)
        s = entry.stat
        s.SetInParent()
        s.pod_name = message.pod_name
        s.average_concurrent_requests = message.average_concurrent_requests
        s.average_proxied_concurrent_requests = message.average_proxied_concurrent_requests
        s.request_count = message.request_count
        s.proxied_request_count = message.proxied_request_count
        s.process_uptime = message.process_uptime
        if message.timestamp is not None:
            s.timestamp = message.timestamp // NS_PER_S
    return wire.SerializeToString()


# ---- big protobuf frames, piece by piece ----

#: A protobuf frame larger than this is split into pieces of about this many bytes.
PROTOBUF_PIECE_BYTES = 16 * 1024


def _varint_end(buf, pos, end):
    """The position after the varint at ``pos``; FrameError when it runs past ``end``."""
    while True:
        if pos >= end:
            raise FrameError(PROTOBUF, "not WireStatMessages: truncated varint")
        byte = buf[pos]
        pos += 1
        if byte < 0x80:
            return pos


def _piece_end(buf, pos, size):
    """The end of the whole top-level fields from ``pos`` that first reach ``size``
    bytes (or the frame's end)."""
    end = len(buf)
    stop = min(end, pos + size)
    while pos < stop:
        tag = buf[pos]
        pos = pos + 1 if tag < 0x80 else _varint_end(buf, pos, end)
        wire_type = tag & 7
        if wire_type == 2:
            length = buf[pos] if pos < end else 0x80
            if length < 0x80:
                pos += 1
            else:
                start = pos
                pos = _varint_end(buf, pos, end)
                length = 0
                for i, byte in enumerate(buf[start:pos]):
                    length |= (byte & 0x7F) << (7 * i)
            pos += length
        elif wire_type == 0:
            pos = _varint_end(buf, pos, end)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:  # 3 and 4: a group, which no proto3 sender writes; 6 and 7: no such type
            raise FrameError(PROTOBUF, f"not WireStatMessages: wire type {wire_type} at the top level")
        if pos > end:
            raise FrameError(PROTOBUF, "not WireStatMessages: a field runs past the frame's end")
    return pos


def protobuf_pieces(payload, size=PROTOBUF_PIECE_BYTES):
    """Split a ``WireStatMessages`` frame into pieces of whole top-level fields of about
    ``size`` bytes (a longer field is a piece of its own), yielding one piece (``bytes``)
    per step; ``decode_protobuf`` of each piece in turn gives the frame's stats. Each
    piece is parsed as it is cut, so a frame that ``decode_protobuf`` would refuse
    raises ``FrameError`` before the generator ends (and a top-level group, which the
    parser takes in a whole frame, is refused here). For frames too big to decode in
    one go: the caller can spread the steps over time."""
    buf = bytes(payload)
    pos = 0
    while pos < len(buf):
        end = _piece_end(buf, pos, size)
        piece = buf[pos:end]
        try:
            WireStatMessages.FromString(piece)
        except (_ProtobufDecodeError, RuntimeError, ValueError) as e:
            raise FrameError(PROTOBUF, f"not WireStatMessages: {e}") from None
        yield piece
        pos = end
