"""Which gob era's ``StatMessage`` a frame carries, and the Knative releases of each format.

A gob frame of a Knative sender starts with the type definitions of its ``StatMessage``
(a fresh encoder per frame), and the six gob eras (``statserver.wire.gobstat``) differ in them:

- ``Key`` a string ("ns/name") in v02, v06, v07; a ``NamespacedName`` struct from v08;
- ``LameDuck`` only in v02; ``RequestCount`` a Go ``int32`` (gob ``int``) in v02 and v06,
  ``float64`` from v07;
- ``Time`` a ``*time.Time`` up to v08, whose gob type definition is unnamed, and a named
  ``time.Time`` from v10;
- ``ProcessUptime`` only from v12.

Type *names* of the structs are not looked at (gob matches fields by name; a sender's type
names are its own). Nothing here imports Twisted.
"""

from collections import OrderedDict

from statserver.gob.decoder import MAX_CACHED_PREFIX, definitions_length, stream_types
from statserver.gob.errors import GobError
from statserver.gob.wiretypes import INT, STRING

#: The Knative releases that send each shape or format (``describe``).
RELEASES = {
    "v02": "Knative v0.2–v0.4",
    "v06": "Knative v0.5–v0.6",
    "v07": "Knative v0.7",
    "v08": "Knative v0.8–v0.9",
    "v10": "Knative v0.10–v0.11",
    "v12": "Knative v0.12–v0.15",
    "json": "Knative v0.16–v0.19",
    "protobuf": "Knative v0.17–v0.18",
    "protobuf+timestamp": "Knative v0.19 and later",
    "unknown": "gob of no known Knative StatMessage shape",
}
UNKNOWN = "unknown"
_CACHE_SIZE = 256
_cache = OrderedDict()  # the frame's type-definition run -> shape


def _struct_fields(types, tid):
    wt = types.get(tid)
    if wt is None or wt.kind != "struct":
        return None
    return dict(wt.fields)


def shape_of_types(types):
    """The era (``"v02"`` … ``"v12"``) whose ``StatMessage`` these wire types define, or
    :data:`UNKNOWN`."""
    for wt in types.values():
        if wt.kind != "struct":
            continue
        top = dict(wt.fields)
        if "Key" not in top or "Stat" not in top:
            continue
        stat = _struct_fields(types, top["Stat"])
        if stat is None or "PodName" not in stat:
            continue
        if top["Key"] == STRING:
            if "LameDuck" in stat:
                return "v02"
            return "v06" if stat.get("RequestCount") == INT else "v07"
        if "ProcessUptime" in stat:
            return "v12"
        time = types.get(stat.get("Time"))
        if time is not None and time.name:
            return "v10"
        return "v08"
    return UNKNOWN


def gob_shape(payload):
    """The era of one gob frame's ``StatMessage`` (:func:`shape_of_types`), or
    :data:`UNKNOWN` when its type definitions cannot be read. Remembered for the last
    256 distinct definition runs; ``definitions(payload)`` is the run it is keyed by."""
    payload = bytes(payload)
    prefix = definitions(payload)
    shape = _cache.get(prefix) if prefix else None
    if shape is not None:
        _cache.move_to_end(prefix)
        return shape
    try:
        shape = shape_of_types(stream_types(payload))
    except GobError:
        return UNKNOWN
    if prefix:
        _cache[prefix] = shape
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return shape


def definitions(payload):
    """The leading type-definition messages of a gob frame (empty when there are none or
    they are too long to remember)."""
    end = definitions_length(payload)
    return payload[:end] if 0 < end <= MAX_CACHED_PREFIX else b""


def describe(kind):
    """``"v08 · Knative v0.8–v0.9"`` for a shape or format key of :data:`RELEASES`."""
    release = RELEASES.get(kind)
    return f"{kind} · {release}" if release else kind
