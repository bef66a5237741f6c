"""What the server knows of each open sender connection: ``ConnectionInfo``.

The protocol makes one when its WebSocket opens (``info``); the server updates it for
every frame it decodes (``frame``) or fails to (``bad_frame``). ``GET /api/v1/connections``
and the dashboard read them (``to_json``).
"""

from statserver.constants import FORMATS, GOB, JSON, NS_PER_S, PROTOBUF
from statserver.model import rfc3339_ns
from statserver.wire.gob_era import describe, gob_shape

#: The kind of a connection's frames is looked at on its first frame of each format and
#: then on every 64th: one sender speaks one release, and the check costs about as much as
#: the rest of the bookkeeping.
CHECK_EVERY = 64


class ConnectionInfo:
    """One sender connection: its peer, since when it is open (int ns), frames and stats
    received, bad frames, when its last frame arrived, the frames decoded of each format
    (``by_format``) and the kinds seen (``kinds``: a gob era ``v02``…``v12``, ``json``,
    ``protobuf`` or ``protobuf+timestamp``; see ``statserver.wire.gob_era.RELEASES``)."""

    __slots__ = ("peer", "connected_at", "frames", "stats", "bad_frames", "last_frame_at",
                 "by_format", "kinds")

    def __init__(self, peer, connected_at):
        self.peer = peer
        self.connected_at = connected_at
        self.frames = 0
        self.stats = 0
        self.bad_frames = 0
        self.last_frame_at = None
        self.by_format = dict.fromkeys(FORMATS, 0)
        self.kinds = {}  # kind -> its format, in the order first seen

    def frame(self, fmt, payload, stats, received_at):
        """Count one decoded frame of format ``fmt`` carrying ``stats``."""
        self.frames += 1
        self.stats += len(stats)
        self.last_frame_at = received_at
        count = self.by_format[fmt] = self.by_format[fmt] + 1
        if count % CHECK_EVERY == 1:
            self.kinds.setdefault(kind_of(fmt, payload, stats), fmt)

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
            "formats": [{"kind": kind, "era": describe(kind), "format": fmt,
                         "frames": self.by_format[fmt]}
                        for kind, fmt in self.kinds.items()],
            "frames": self.frames,
            "stats": self.stats,
            "bad_frames": self.bad_frames,
            "connected_since": rfc3339_ns(self.connected_at),
            "last_frame_age_seconds": None if last is None else round((now_ns - last) / NS_PER_S, 3),
        }


def kind_of(fmt, payload, stats):
    """The kind of one decoded frame: its gob era, ``json``, ``protobuf`` or
    ``protobuf+timestamp`` (its first stat has a timestamp)."""
    if fmt == GOB:
        return gob_shape(payload)
    if fmt == PROTOBUF:
        return "protobuf+timestamp" if stats and stats[0].timestamp is not None else PROTOBUF
    return JSON


def connections_json(infos, now_ns):
    """``{"connections": [...]}`` for ``GET /api/v1/connections``, oldest first."""
    rows = sorted(infos, key=lambda info: (info.connected_at, info.peer))
    return {"connections": [info.to_json(now_ns) for info in rows]}
