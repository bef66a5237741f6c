"""What the server knows of each open sender connection: ``ConnectionInfo``.

The protocol makes one when its WebSocket opens (``info``); the server updates it for
every frame it decodes (``frame``) or fails to (``bad_frame``). ``GET /api/v1/connections``
and the dashboard read them (``to_json``).
"""

from statserver.formats import GOB, JSON, PROTOBUF
from statserver.gobshape import UNKNOWN, definitions, describe, gob_shape
from statserver.model import rfc3339_ns

_NS_PER_S = 1_000_000_000


class ConnectionInfo:
    """One sender connection: its peer, since when it is open (int ns), frames and stats
    received, bad frames, when its last frame arrived, and the frames of each format kind
    it sent (``kinds``: a gob era ``v02``…``v12``, ``json``, ``protobuf`` or
    ``protobuf+timestamp``; see ``statserver.gobshape.RELEASES``)."""

    __slots__ = ("peer", "connected_at", "frames", "stats", "bad_frames", "last_frame_at",
                 "kinds", "_gob_prefix", "_gob_shape")

    def __init__(self, peer, connected_at):
        self.peer = peer
        self.connected_at = connected_at
        self.frames = 0
        self.stats = 0
        self.bad_frames = 0
        self.last_frame_at = None
        self.kinds = {}
        self._gob_prefix = None  # the last gob frame's type definitions, and their era
        self._gob_shape = UNKNOWN

    def frame(self, fmt, payload, stats, received_at):
        """Count one decoded frame of format ``fmt`` carrying ``stats``."""
        self.frames += 1
        self.stats += len(stats)
        self.last_frame_at = received_at
        if fmt == GOB:
            prefix = self._gob_prefix
            if prefix is None or not payload.startswith(prefix):
                self._gob_shape = gob_shape(payload)
                self._gob_prefix = definitions(payload) or None
            kind = self._gob_shape
        elif fmt == PROTOBUF:
            kind = "protobuf+timestamp" if stats and stats[0].timestamp is not None else PROTOBUF
        else:
            kind = JSON
        kinds = self.kinds
        kinds[kind] = kinds.get(kind, 0) + 1

    def bad_frame(self, fmt, received_at):
        """Count one frame (detected as ``fmt``) that failed to decode."""
        self.frames += 1
        self.bad_frames += 1
        self.last_frame_at = received_at

    def to_json(self, now_ns):
        """A JSON-ready dict; ages are in seconds as of ``now_ns``."""
        last = self.last_frame_at
        return {
            "peer": self.peer,
            "formats": [{"kind": kind, "era": describe(kind), "frames": count}
                        for kind, count in sorted(self.kinds.items())],
            "frames": self.frames,
            "stats": self.stats,
            "bad_frames": self.bad_frames,
            "connected_since": rfc3339_ns(self.connected_at),
            "last_frame_age_seconds": None if last is None else round((now_ns - last) / _NS_PER_S, 3),
        }


def connections_json(infos, now_ns):
    """``{"connections": [...]}`` for ``GET /api/v1/connections``, oldest first."""
    rows = sorted(infos, key=lambda info: (info.connected_at, info.peer))
    return {"connections": [info.to_json(now_ns) for info in rows]}
