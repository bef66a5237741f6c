"""What senders put on the WebSocket, as ``StatMessage``s: one frame in, its stats out.

- ``frame``: which format a frame is, and the one call the server makes
  (``decode_frame``);
- ``jsonstat``: text frames of v0.16–v0.19;
- ``protostat``: ``WireStatMessages`` of v0.17 and later (``stat.proto``, its
  descriptor in ``stat_proto``), with the compiled decoder where it is built, and big
  frames cut into pieces;
- ``gobstat``: gob streams of v0.2–v0.15 (through ``statserver.gob``), and
  ``gob_era``: which era's ``StatMessage`` a gob frame carries;
- ``errors``: ``FrameError``, what every decoder raises for a frame it refuses.

Every function here encodes too, as the senders of each era do (for the client, the
load generator and the tests).
"""

from statserver.constants import FORMATS, GOB, JSON, PROTOBUF
from statserver.wire.errors import FrameError
from statserver.wire.frame import ONE_STAT_MAX_BYTES, decode_frame, detect_format
from statserver.wire.gobstat import decode_gob, encode_stat_frame
from statserver.wire.jsonstat import decode_json, encode_json
from statserver.wire.protostat import (
    IMPLEMENTATION,
    PROTOBUF_PIECE_BYTES,
    decode_protobuf,
    encode_protobuf,
    protobuf_pieces,
)

__all__ = [
    "FORMATS", "GOB", "JSON", "PROTOBUF", "FrameError", "ONE_STAT_MAX_BYTES",
    "decode_frame", "detect_format", "decode_gob", "encode_stat_frame", "decode_json",
    "encode_json", "IMPLEMENTATION", "PROTOBUF_PIECE_BYTES", "decode_protobuf",
    "encode_protobuf", "protobuf_pieces",
]
