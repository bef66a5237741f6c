"""One WebSocket frame of any Knative era → the ``StatMessage``s it carries, and back.

Detection (see ``docs/server.md`` for why it cannot mistake one format for another):

- a text frame is JSON (v0.16–v0.19);
- a binary frame that is empty or whose first byte is ``0x0a`` is protobuf
  ``WireStatMessages`` (v0.17 and later);
- any other binary frame is a gob stream (v0.2–v0.15).
"""

import json
import math
import re
from functools import partial
from operator import attrgetter
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as _ProtobufDecodeError

from statserver.gob.errors import GobError
from statserver.gobstat import decode_stat_frame
from statserver.model import StatMessage

GOB = "gob"
PROTOBUF = "protobuf"
JSON = "json"
FORMATS = (GOB, PROTOBUF, JSON)

_NS_PER_S = 1_000_000_000
# A protobuf frame carries a hundred stats and more: each is built without the
# NamedTuple's generated __new__ (about a tenth of the decoding time).
_new_stat = partial(tuple.__new__, StatMessage)
_PROTOBUF_FIRST_BYTE = 0x0A  # field 1 (messages), wire type 2 (length-delimited)
#: A JSON or gob frame carries one stat, a few hundred bytes even with the longest names
#: Kubernetes allows; a bigger one is refused undecoded (parsing 5 MiB of JSON costs up
#: to half a second of reactor time).
ONE_STAT_MAX_BYTES = 64 * 1024


class FrameError(ValueError):
    """A frame could not be decoded; ``format`` is the format it was detected as."""

    def __init__(self, format, reason):
        super().__init__(f"bad {format} frame: {reason}")
        self.format = format
        self.reason = reason


def detect_format(payload, is_binary):
    """The format of a frame: ``"json"``, ``"protobuf"`` or ``"gob"``."""
    if not is_binary:
        return JSON
    if not payload or payload[0] == _PROTOBUF_FIRST_BYTE:
        return PROTOBUF
    return GOB


def decode_frame(payload, is_binary, received_at=None):
    """Decode one frame; return ``(format, [StatMessage, ...])`` or raise ``FrameError``.

    ``received_at`` (int nanoseconds since the Unix epoch) is stored in every stat. A
    JSON or gob frame (one stat) over :data:`ONE_STAT_MAX_BYTES` is a ``FrameError``.
    """
    fmt = detect_format(payload, is_binary)
    if fmt != PROTOBUF and len(payload) > ONE_STAT_MAX_BYTES:
        raise FrameError(fmt, f"{len(payload)} bytes, more than the {ONE_STAT_MAX_BYTES} "
                              "bytes a frame of one stat may have")
    if fmt == JSON:
        return fmt, [decode_json(payload, received_at)]
    if fmt == PROTOBUF:
        return fmt, decode_protobuf(payload, received_at)
    return fmt, [decode_gob(payload, received_at)]


# ---- gob (v0.2–v0.15) ----


def decode_gob(payload, received_at=None):
    """One gob-encoded ``StatMessage`` of any gob era (``statserver.gobstat``)."""
    try:
        return decode_stat_frame(bytes(payload), received_at)
    except GobError as e:
        raise FrameError(GOB, str(e)) from None


# ---- JSON text frames (v0.16–v0.19) ----

_JSON_STAT_FIELDS = (
    "pod_name",
    "average_concurrent_requests",
    "average_proxied_concurrent_requests",
    "request_count",
    "proxied_request_count",
    "process_uptime",
)


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _field(obj, name):
    """``obj[name]`` matched the way Go's encoding/json does: exact, else case-insensitive."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for key, value in obj.items():
        if key.casefold() == folded:
            return value
    return None


def _json_number(value, where):
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FrameError(JSON, f"{where} is not a number")
    try:
        value = float(value)
    except OverflowError:  # an integer of more than 308 digits
        raise FrameError(JSON, f"{where} is out of range") from None
    if not math.isfinite(value):
        raise FrameError(JSON, f"{where} is out of range")
    return value


def _json_string(value, where):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FrameError(JSON, f"{where} is not a string")
    return value


def decode_json(payload, received_at=None):
    """One ``{"Key": {"Namespace", "Name"}, "Stat": {...}}`` text frame."""
    try:
        if isinstance(payload, (bytes, bytearray, memoryview)):
            payload = bytes(payload).decode("utf-8")
        doc = json.loads(payload, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FrameError(JSON, f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise FrameError(JSON, "not a JSON object")
    key, stat = _field(doc, "Key"), _field(doc, "Stat")
    if not isinstance(key, dict):
        raise FrameError(JSON, "no Key object")
    if not isinstance(stat, dict):
        raise FrameError(JSON, "no Stat object")
    values = [_json_string(_field(stat, "pod_name"), "Stat.pod_name")]
    values += [_json_number(_field(stat, f), f"Stat.{f}") for f in _JSON_STAT_FIELDS[1:]]
    timestamp = _field(stat, "timestamp")
    if timestamp is not None:
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise FrameError(JSON, "Stat.timestamp is not an integer")
        if not -(2**63) <= timestamp < 2**63:
            raise FrameError(JSON, "Stat.timestamp is out of range")
        timestamp = timestamp * _NS_PER_S if timestamp else None
    return StatMessage(
        _json_string(_field(key, "Namespace"), "Key.Namespace"),
        _json_string(_field(key, "Name"), "Key.Name"),
        *values,
        timestamp=timestamp,
        received_at=received_at,
    )


def encode_json(message):
    """A ``StatMessage`` as the text frame a v0.16–v0.19 sender writes (zero fields left
    out; ``timestamp`` as whole Unix seconds, v0.19's form, when the stat has one)."""
    stat = {}
    for name in _JSON_STAT_FIELDS:
        value = getattr(message, name)
        if value:
            stat[name] = value
    if message.timestamp is not None and message.timestamp // _NS_PER_S:
        stat["timestamp"] = message.timestamp // _NS_PER_S
    doc = {"Key": {"Namespace": message.namespace, "Name": message.name}, "Stat": stat}
    return json.dumps(doc, separators=(",", ":"))


# ---- protobuf WireStatMessages (v0.17 and later) ----

_PROTO_FILE = Path(__file__).with_name("stat.proto")
_SCALARS = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
}


def _file_descriptor(text):
    """A ``FileDescriptorProto`` from the small proto3 subset ``stat.proto`` uses:
    one package, messages of scalar, message and repeated fields."""
    text = re.sub(r"//[^\n]*", "", text)
    fdp = descriptor_pb2.FileDescriptorProto(name="statserver/stat.proto", syntax="proto3")
    fdp.package = re.search(r"\bpackage\s+([\w.]+)\s*;", text).group(1)
    for name, body in re.findall(r"\bmessage\s+(\w+)\s*\{([^}]*)\}", text):
        msg = fdp.message_type.add(name=name)
        for label, ftype, fname, number in re.findall(
            r"(repeated\s+)?(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", body
        ):
            field = msg.field.add(name=fname, number=int(number), json_name=fname)
            field.label = field.LABEL_REPEATED if label else field.LABEL_OPTIONAL
            if ftype in _SCALARS:
                field.type = _SCALARS[ftype]
            else:
                field.type = field.TYPE_MESSAGE
                field.type_name = f".{fdp.package}.{ftype}"
    return fdp


def _message_classes():
    pool = descriptor_pool.DescriptorPool()
    fdp = _file_descriptor(_PROTO_FILE.read_text(encoding="utf-8"))
    pool.Add(fdp)
    find = pool.FindMessageTypeByName
    if hasattr(message_factory, "GetMessageClass"):
        get = message_factory.GetMessageClass
    else:  # protobuf < 4.22
        get = message_factory.MessageFactory(pool).GetPrototype
    return get(find("metrics.WireStatMessages")), get(find("metrics.WireStatMessage"))


WireStatMessages, WireStatMessage = _message_classes()
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
            uptime, ts * _NS_PER_S if ts else None, received_at, None,
        )))  # fmt: skip
    return out


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
            s.timestamp = message.timestamp // _NS_PER_S
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
