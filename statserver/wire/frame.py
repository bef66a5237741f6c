"""One WebSocket frame → its format → the decoder of that format → ``StatMessage``s.

Detection (see ``docs/server.md`` for why it cannot mistake one format for another):

- a text frame is JSON (v0.16–v0.19);
- a binary frame that is empty or whose first byte is ``0x0a`` is protobuf
  ``WireStatMessages`` (v0.17 and later);
- any other binary frame is a gob stream (v0.2–v0.15).
"""

from statserver.constants import GOB, JSON, PROTOBUF
from statserver.wire import protostat
from statserver.wire.errors import FrameError
from statserver.wire.gobstat import decode_gob
from statserver.wire.jsonstat import decode_json

_PROTOBUF_FIRST_BYTE = 0x0A  # field 1 (messages), wire type 2 (length-delimited)
#: A JSON or gob frame carries one stat, a few hundred bytes even with the longest names
#: Kubernetes allows; a bigger one is refused undecoded (parsing 5 MiB of JSON costs up
#: to half a second of reactor time).
ONE_STAT_MAX_BYTES = 64 * 1024


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
        return fmt, protostat.decode_protobuf(payload, received_at)
    return fmt, [decode_gob(payload, received_at)]
