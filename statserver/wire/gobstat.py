"""Knative's ``StatMessage`` over gob (v0.2–v0.15 senders), both ways."""

from typing import NamedTuple

from statserver.constants import GOB, NS_PER_S
from statserver.gob.decoder import decode, definitions_length, stream_types
from statserver.gob.errors import GobError
from statserver.gob.values import GoTime
from statserver.gob.wiretypes import check_type
from statserver.model import StatMessage
from statserver.speedups import choose, compiled
from statserver.wire.errors import FrameError

# ---- decoding: one target that fits every gob era's StatMessage ----


class _NamespacedName(NamedTuple):
    Namespace: str = ""
    Name: str = ""


class _Stat(NamedTuple):
    Time: GoTime | None = None  # time.Time (v0.10+) or *time.Time, named or not on the wire
    PodName: str = ""
    AverageConcurrentRequests: float = 0.0
    AverageProxiedConcurrentRequests: float = 0.0
    RequestCount: float = 0.0  # int32 before v0.7
    ProxiedRequestCount: float = 0.0
    ProcessUptime: float = 0.0


class _StatMessage(NamedTuple):
    Key: str | _NamespacedName = ""  # "ns/name" before v0.8
    Stat: _Stat | None = None


_NO_STAT = _Stat()
_GO_ZERO_SECONDS = GoTime().seconds  # Go's zero time.Time: no time sent
_new_stat_message = tuple.__new__  # StatMessage's own __new__ costs a Python call


def decode_stat_frame(payload, received_at=None):
    """Decode one WebSocket binary frame holding a fresh-encoder gob stream of a Knative
    ``StatMessage`` of any gob era; return a ``StatMessage`` or raise ``GobError``.

    ``timestamp`` is the sender's time (None when the frame has none or Go's zero time)
    and ``timestamp_offset`` its zone offset (None for UTC)."""
    key, stat = decode(payload, _StatMessage)
    if key.__class__ is str:
        namespace, _, name = key.partition("/")
    else:
        namespace, name = key
    if stat is None:
        stat = _NO_STAT
    t, pod, average, proxied_average, count, proxied_count, uptime = stat
    timestamp = offset = None
    if t is not None:
        seconds, nanos, offset = t
        if seconds == _GO_ZERO_SECONDS and not nanos:
            offset = None
        else:
            timestamp = seconds * NS_PER_S + nanos
    return _new_stat_message(
        StatMessage,
        (
            namespace,
            name,
            pod,
            average,
            proxied_average,
            count,
            proxied_count,
            uptime,
            timestamp,
            received_at,
            offset,
        ),
    )


def pure_decode_gob(payload, received_at=None):
    """``decode_stat_frame`` with a ``FrameError`` for a bad frame, as the other
    formats' decoders raise."""
    try:
        return decode_stat_frame(bytes(payload), received_at)
    except GobError as e:
        raise FrameError(GOB, str(e)) from None


# ---- the compiled decoder's layouts: what each wire field of a sender's types is ----

_SKIP = {"bool": "u", "int": "u", "uint": "u", "float": "u", "bytes": "b", "string": "b",
         "gob": "b", "binary": "b", "text": "b"}
_STAT_CODES = {("Time", "gob"): "t", ("PodName", "string"): "p",
               ("AverageConcurrentRequests", "float"): "0",
               ("AverageProxiedConcurrentRequests", "float"): "1",
               ("RequestCount", "float"): "2", ("ProxiedRequestCount", "float"): "3",
               ("ProcessUptime", "float"): "4"}
_KEY_CODES = {("Namespace", "string"): "n", ("Name", "string"): "m"}
_TOP_CODES = {("Key", "string"): "K", ("Key", "struct"): "k", ("Stat", "struct"): "s"}
_TARGET_FIELDS = {"Key", "Stat", *_Stat._fields, *_NamespacedName._fields}
LAYOUTS_MAX = 64  # senders' type-definition prefixes remembered, each at most:
LAYOUT_PREFIX_MAX = 4096  # bytes (a StatMessage's definitions take about 300)


def _codes(wire, types, known):
    """One code a field of struct ``wire``, as bytes; None when a field is not one the
    compiled decoder reads or skips (the pure decoder then judges every frame)."""
    codes = []
    for name, tid in wire.fields:
        kind = getattr(types.get(tid), "kind", None)
        code = known.get((name, kind))
        if code is None:
            if name in _TARGET_FIELDS or kind not in _SKIP:
                return None
            code = _SKIP[kind]
        codes.append(code)
    return "".join(codes).encode()


def _layout(payload, start):
    """``(start, top type id, top codes, Key codes, Stat codes)`` of the stream's
    definitions (``payload[:start]``), or None where they define no StatMessage."""
    try:
        types = stream_types(payload[:start])
        for wire in types.values():  # as the pure decoder checks what a value reaches
            if wire.id > 64:
                check_type(wire, 0)
    except GobError:
        return None
    tops = [t for t in types.values() if t.kind == "struct" and t.id > 64
            and any(name == "Stat" for name, _ in t.fields)]
    if len(tops) != 1:
        return None
    top = tops[0]
    fields = dict(top.fields)
    key, stat = types.get(fields.get("Key")), types.get(fields.get("Stat"))
    codes = (_codes(top, types, _TOP_CODES),
             _codes(key, types, _KEY_CODES) if key is not None and key.kind == "struct" else b"",
             _codes(stat, types, _STAT_CODES) if stat is not None and stat.kind == "struct" else b"")
    if None in codes:
        return None
    return (start, top.id, *codes)


def compiled_decode_gob():
    """``decode_gob`` through ``statserver._speedups.decode_gob_stat`` (the pure decoder
    where that answers None), or None where the extension is not built."""
    fast = compiled("decode_gob_stat")
    if fast is None:
        return None
    layouts = {}  # type-definition prefix -> layout (or None)
    last = [None, None]  # the last frame's prefix and layout

    def decode_gob(payload, received_at=None):
        """``pure_decode_gob``'s result, compiled for a known sender's frame."""
        if payload.__class__ is bytes:
            prefix, layout = last
            if prefix is None or not payload.startswith(prefix):
                end = definitions_length(payload)
                if end > LAYOUT_PREFIX_MAX:
                    return pure_decode_gob(payload, received_at)
                prefix = payload[:end]
                layout = layouts.get(prefix, False)
                if layout is False:
                    layout = _layout(payload, end)
                    if len(layouts) >= LAYOUTS_MAX:
                        layouts.pop(next(iter(layouts)))
                    layouts[prefix] = layout
                last[:] = prefix, layout
            if layout is not None:
                stat = fast(payload, *layout, received_at)
                if stat is not None:
                    return stat
        return pure_decode_gob(payload, received_at)

    return decode_gob


decode_gob = choose(compiled_decode_gob, pure_decode_gob)


# ---- encoding: the Go types of each gob era, as the reference sender declares them ----
# (Type names are the reference sender's; Go's decoder matches fields by name only.)


def _era_types():
    from statserver.gob.gotypes import BOOL, FLOAT64, INT32, STRING, TIME, Pointer, Struct

    floats = [("AverageConcurrentRequests", FLOAT64), ("AverageProxiedConcurrentRequests", FLOAT64)]
    nn = Struct("NamespacedName", [("Namespace", STRING), ("Name", STRING)])
    v02 = Struct("StatV02", [("Time", Pointer(TIME)), ("PodName", STRING), floats[0],
                             ("RequestCount", INT32), ("LameDuck", BOOL)])
    v06 = Struct("StatV06", [("Time", Pointer(TIME)), ("PodName", STRING), *floats,
                             ("RequestCount", INT32), ("ProxiedRequestCount", INT32)])
    counts = [("RequestCount", FLOAT64), ("ProxiedRequestCount", FLOAT64)]
    v07 = Struct("StatV07", [("Time", Pointer(TIME)), ("PodName", STRING), *floats, *counts])
    v10 = Struct("Stat", [("Time", TIME), ("PodName", STRING), *floats, *counts])
    v12 = Struct("StatV12", [("Time", TIME), ("PodName", STRING), *floats, *counts,
                             ("ProcessUptime", FLOAT64)])
    return {
        "v02": Struct("StatMessageV02", [("Key", STRING), ("Stat", Pointer(v02))]),
        "v06": Struct("StatMessageV06", [("Key", STRING), ("Stat", v06)]),
        "v07": Struct("StatMessageV07", [("Key", STRING), ("Stat", v07)]),
        "v08": Struct("StatMessageV08", [("Key", nn), ("Stat", v07)]),
        "v10": Struct("StatMessage", [("Key", nn), ("Stat", v10)]),
        "v12": Struct("StatMessageV12", [("Key", nn), ("Stat", v12)]),
    }


_ERA_TYPES = _era_types()
_ERA_ENCODERS = {}  # era -> (type-definition bytes, encoder that has sent them)


def _stat_value(m, era):
    from statserver.gob.values import GoTime

    time = None if m.timestamp is None else GoTime.from_unix_nano(m.timestamp, m.timestamp_offset)
    stat = {"Time": time, "PodName": m.pod_name,
            "AverageConcurrentRequests": m.average_concurrent_requests,
            "AverageProxiedConcurrentRequests": m.average_proxied_concurrent_requests,
            "RequestCount": m.request_count, "ProxiedRequestCount": m.proxied_request_count,
            "ProcessUptime": m.process_uptime}
    if era in ("v02", "v06"):  # int32 counts: Go's int32(float) truncates
        for name in ("RequestCount", "ProxiedRequestCount"):
            if not -(2**31) - 1 < stat[name] < 2**31:  # NaN fails this too
                from statserver.gob.errors import GobError

                raise GobError(f"{name} {stat[name]} does not fit the {era} era's int32")
            stat[name] = int(stat[name])
    if era in ("v08", "v10", "v12"):
        key = {"Namespace": m.namespace, "Name": m.name}
    else:
        key = m.key
    return {"Key": key, "Stat": stat}


def encode_stat_frame(message, era="v10"):
    """Encode a ``StatMessage`` as the gob stream a fresh Go 1.19 encoder of that era writes
    (``era``: ``v02``, ``v06``, ``v07``, ``v08``, ``v10`` or ``v12``): the bytes of one
    WebSocket binary frame. The timestamp keeps ``timestamp_offset`` (None: UTC). Fields
    an era lacks are dropped; raises ``GobError`` for a value the era cannot carry."""
    cached = _ERA_ENCODERS.get(era)
    if cached is None:
        from statserver.gob.encoder import Encoder

        if era not in _ERA_TYPES:
            raise ValueError(f"unknown gob era {era!r} (known: {', '.join(_ERA_TYPES)})")
        encoder = Encoder()
        cached = _ERA_ENCODERS[era] = (encoder.describe(_ERA_TYPES[era]), encoder)
    prefix, encoder = cached
    return prefix + encoder.encode(_stat_value(message, era), _ERA_TYPES[era])
