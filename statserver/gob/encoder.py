"""Encode Python values with declared Go types into gob streams that Go reads.

The encoder follows Go 1.19's ``encoding/gob`` step by step so that the bytes are the
ones a Go process writes: type ids are numbered as Go numbers them (a struct before its
fields' types, a slice, array or map after its elements), each type definition is its own
message, sent before the first value that needs it (and, for an interface's concrete
type, in the middle of the value, which splits the value's message), zero fields are left
out, and a top-level non-struct value is a "singleton" preceded by a 0 byte.

Python values: dicts (or objects with attributes) for structs, lists/tuples for slices and
arrays, dicts or (key, value) pairs for maps, the element itself for a pointer (None is
nil), ``GoInterface`` for interfaces, ``GoTime`` (or an aware ``datetime``) for
``time.Time``, ``GoOpaque`` or bytes for other marshalers. A missing struct field or None
stands for the field's zero value.
"""

from __future__ import annotations

import datetime as _dt
import math
import struct
from collections.abc import Mapping

from statserver.gob import gotypes as gt
from statserver.gob.errors import GobError
from statserver.gob.values import GoInterface, GoOpaque, GoTime

_UNIX_TO_INTERNAL = 62135596800  # seconds from 0001-01-01 to 1970-01-01
_WIRE_FIELD = {"array": 1, "slice": 2, "struct": 3, "map": 4, "gob": 5, "binary": 6, "text": 7}


# ---- the primitives of the wire format -------------------------------------------------


def put_uint(b, x):
    """Append gob's unsigned integer: one byte below 128, else -count then big-endian bytes."""
    if x < 0x80:
        b.append(x)
    else:
        n = (x.bit_length() + 7) >> 3
        b.append(256 - n)
        b += x.to_bytes(n, "big")


def put_int(b, i):
    """Append gob's signed integer: zig-zag with the complement for negatives."""
    put_uint(b, ((~i) << 1) | 1 if i < 0 else i << 1)


def float_bits(f):
    """A float64's bits byte-reversed, as gob sends them (integers come out short)."""
    return int.from_bytes(struct.pack("<d", f), "big")


_pack_le_double = struct.Struct("<d").pack


def put_float(b, f):
    """Append a float64 as gob sends it: ``put_uint(float_bits(f))``, done on the bytes."""
    raw = _pack_le_double(f).lstrip(b"\0")
    if len(raw) == 1 and raw[0] < 0x80:
        b += raw
    elif raw:
        b.append(256 - len(raw))
        b += raw
    else:
        b.append(0)


def _to_float32(f):
    try:
        return struct.unpack("<f", struct.pack("<f", f))[0]
    except OverflowError:  # Go's float64 -> float32 conversion gives an infinity
        return math.copysign(math.inf, f)


def time_binary(t):
    """Go's ``Time.MarshalBinary``: version 1, or 2 when the zone offset has seconds."""
    if isinstance(t, _dt.datetime):
        t = GoTime.from_datetime(t)
    seconds, nanos = divmod(t.seconds * 1_000_000_000 + t.nanos, 1_000_000_000)
    head = struct.pack(">bqi", 1, seconds + _UNIX_TO_INTERNAL, nanos)
    if t.offset is None:  # UTC
        return head + b"\xff\xff"
    minutes = abs(t.offset) // 60 * (1 if t.offset >= 0 else -1)  # Go's truncating division
    secs = t.offset - minutes * 60
    if minutes < -32768 or minutes == -1 or minutes > 32767:
        raise GobError(f"time zone offset {t.offset}s cannot be sent (Go refuses it too)")
    if secs == 0:
        return head + struct.pack(">h", minutes)
    return b"\x02" + head[1:] + struct.pack(">hb", minutes, secs)


# ---- Go's type table: ids and wire descriptions ------------------------------------------


class _GobType:
    """Go's ``gobType``: what the wire says about one type."""

    __slots__ = ("kind", "name", "id", "key_id", "elem_id", "length", "fields", "rtype")

    def __init__(self, kind, name, rtype, id=0):
        self.kind = kind
        self.name = name
        self.rtype = rtype
        self.id = id
        self.key_id = self.elem_id = self.length = 0
        self.fields = []


def _is_external(t):
    return isinstance(gt.base(t), gt.Opaque)


def _is_bytes(t):
    if t == gt.BYTES:
        return True
    if isinstance(t, gt.Slice) and isinstance(t.elem, gt.Scalar):
        return t.elem.wire_id == gt.UINT_ID and t.elem.bits == 8
    return False


class TypeTable:
    """The type ids of one Go process: Go numbers types globally, in the order the process
    first meets them, and names a type after where it first met it (a ``[]int`` met as a
    struct field is ``"[]int"`` on the wire, met at the top level ``""``). ``first_id`` is
    the next free id (65 in a fresh Go 1.19 process); ``type_ids`` and ``type_names``
    pre-assign ids and names to types the process is supposed to have met already."""

    def __init__(self, first_id=65, type_ids=None, type_names=None):
        self._next_id = first_id
        self._preset = dict(type_ids or {})
        self._preset_names = dict(type_names or {})
        self._types = {}  # Go's `types`: type -> _GobType
        self._infos = {}  # Go's typeInfoMap: type -> (id, _GobType to describe or None)

    def _set_id(self, g):
        if g.id:
            return
        preset = self._preset.get(g.rtype)
        if preset is not None:
            g.id = preset
        else:
            g.id = self._next_id
            self._next_id += 1

    def _base_type(self, name, t):
        return self._get_type(name, gt.base(t))

    def _get_type(self, name, rt):
        g = self._types.get(rt)
        if g is None:
            g = self._new_type(self._preset_names.get(rt, name), rt)
            self._types[rt] = g
        return g

    def _new_type(self, name, rt):
        if _is_external(rt):
            g = _GobType(gt.base(rt).kind, name, rt)
            self._set_id(g)
            return g
        if _is_bytes(rt):
            return _GobType("basic", "bytes", rt, gt.BYTES_ID)
        if isinstance(rt, gt.Scalar):
            return _GobType("basic", rt.name, rt, rt.wire_id)
        if isinstance(rt, gt.Interface):
            return _GobType("basic", "interface", rt, gt.INTERFACE_ID)
        if isinstance(rt, gt.Array):
            g = self._types[rt] = _GobType("array", name, rt)
            elem = self._base_type("", rt.elem)
            self._set_id(g)
            g.elem_id, g.length = elem.id, rt.length
            return g
        if isinstance(rt, gt.Map):
            g = self._types[rt] = _GobType("map", name, rt)
            key = self._base_type("", rt.key)
            elem = self._base_type("", rt.elem)
            self._set_id(g)
            g.key_id, g.elem_id = key.id, elem.id
            return g
        if isinstance(rt, gt.Slice):
            g = self._types[rt] = _GobType("slice", name, rt)
            elem = self._base_type(gt.go_name(rt.elem), rt.elem)
            self._set_id(g)
            self._set_id(elem)
            g.elem_id = elem.id
            return g
        if isinstance(rt, gt.Struct):
            g = _GobType("struct", name, rt)
            self._set_id(g)
            self._types[rt] = g
            for fname, ftype in rt.fields:
                fbase = gt.base(ftype)
                field = self._base_type(gt.go_name(fbase) or _type_text(fbase), ftype)
                self._set_id(field)
                g.fields.append((fname, field.id))
            return g
        raise GobError(f"not a Go type: {rt!r}")

    def wire_name(self, t):
        """The name the wire description of ``t`` carries (Go names a type after where the
        process first met it), or None if the process has not met ``t``."""
        g = self._types.get(t if _is_external(t) else gt.base(t))
        return None if g is None else g.name

    def info(self, t):
        """Go's ``getTypeInfo``: (id, gob type to describe on the wire or None) of ``t``."""
        ext = _is_external(t)
        rt = t if ext else gt.base(t)
        info = self._infos.get(rt)
        if info is None:
            g = self._base_type(gt.go_name(rt), rt)
            if ext:  # described by the user type's own entry (a *T gets a second id)
                info = (g.id, self._get_type(gt.go_name(rt), rt))
            elif g.kind == "basic":
                info = (g.id, None)
            else:
                info = (g.id, g)
            self._infos[rt] = info
        return info


def _wire_type(g):
    """The bytes of Go's ``wireType`` struct describing ``g``, gob-encoded."""
    b = bytearray()
    put_uint(b, _WIRE_FIELD[g.kind])
    put_uint(b, 1)  # CommonType, always sent (a struct)
    if g.name:
        put_uint(b, 1)
        put_uint(b, len(g.name.encode()))
        b += g.name.encode()
        put_uint(b, 1)
    else:
        put_uint(b, 2)
    put_int(b, g.id)
    b.append(0)
    if g.kind == "struct":
        if g.fields:
            put_uint(b, 1)
            put_uint(b, len(g.fields))
            for fname, fid in g.fields:
                raw = fname.encode()
                if raw:
                    b.append(1)
                    put_uint(b, len(raw))
                    b += raw
                if fid:
                    put_uint(b, 1 if raw else 2)
                    put_int(b, fid)
                b.append(0)
    else:
        extra = {"array": (g.elem_id, g.length), "slice": (g.elem_id,),
                 "map": (g.key_id, g.elem_id)}.get(g.kind, ())
        last = 0
        for num, value in enumerate(extra, 1):
            if value:
                put_uint(b, num - last)
                put_int(b, value)
                last = num
    b.append(0)  # end of the arrayType/sliceType/structType/mapType/gobEncoderType
    b.append(0)  # end of wireType
    return bytes(b)


# ---- values ----------------------------------------------------------------------------

#: The names Go's gob registers for the basic types (``registerBasics``), for interfaces.
BASIC_NAMES = {s.name: s for s in (
    gt.INT, gt.INT8, gt.INT16, gt.INT32, gt.INT64, gt.UINT, gt.UINT8, gt.UINT16, gt.UINT32,
    gt.UINT64, gt.UINTPTR, gt.FLOAT32, gt.FLOAT64, gt.COMPLEX64, gt.COMPLEX128, gt.BOOL,
    gt.STRING)}
BASIC_NAMES["[]uint8"] = gt.BYTES
for _s in (gt.INT, gt.INT8, gt.INT16, gt.INT32, gt.INT64, gt.UINT, gt.UINT16, gt.UINT32,
           gt.UINT64, gt.UINTPTR, gt.FLOAT32, gt.FLOAT64, gt.COMPLEX64, gt.COMPLEX128, gt.BOOL,
           gt.STRING):
    BASIC_NAMES["[]" + _s.name] = gt.Slice(_s)


class _State:
    """Go's ``encoderState``: the buffer, the last field number, and whether zeros are sent."""

    __slots__ = ("b", "fieldnum", "send_zero")

    def __init__(self, b, fieldnum=-1, send_zero=False):
        self.b = b
        self.fieldnum = fieldnum
        self.send_zero = send_zero

    def update(self, field):
        if field is not None:
            put_uint(self.b, field - self.fieldnum)
            self.fieldnum = field


_NOT_STRUCTS = (str, bytes, bytearray, memoryview, int, float, complex, list, set, frozenset)


def _type_text(t):
    try:
        return t.go_string()
    except Exception:
        return repr(t)


def _get_field(value, name):
    """A struct field of a value that is not a plain dict (``_encode_struct`` reads those)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value.get(name)
    if isinstance(value, _NOT_STRUCTS) or type(value) is tuple:  # (a NamedTuple is fine)
        raise GobError(f"a struct value must be a mapping or an object with its fields, "
                       f"not {type(value).__name__}")
    return getattr(value, name, None)


def _int_value(t, v):
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int):
        raise GobError(f"{t.name} needs an int, not {type(v).__name__}")
    if t.wire_id == gt.INT_ID:
        lo, hi = -(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1
    else:
        lo, hi = 0, (1 << t.bits) - 1
    if not lo <= v <= hi:
        raise GobError(f"{v} does not fit in {t.name}")
    return v


def _number(v, kind):
    """``float(v)`` or ``complex(v)`` for numbers only (not the strings those also take)."""
    if isinstance(v, (int, float)) or (kind is complex and isinstance(v, complex)):
        return kind(v)
    raise GobError(f"{kind.__name__} needs a number, not {type(v).__name__}")


def _sequence(t, v):
    if isinstance(v, (str, Mapping)) or not hasattr(v, "__len__"):
        raise GobError(f"{t.go_string()} needs a sequence, not {type(v).__name__}")
    return v


def _opaque_bytes(t, v):
    if isinstance(v, GoOpaque):
        return v.data
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if t == gt.TIME and isinstance(v, (GoTime, _dt.datetime)):
        return time_binary(v)
    raise GobError(f"{t.go_string()} needs GoOpaque or bytes, not {type(v).__name__}")


class Encoder:
    """One gob stream: types are described once, before the first value that needs them.

    ``encode(value, gotype)`` returns the bytes to append to the stream for that value.
    ``registry`` maps the names of an interface's concrete types to Go types (Go's
    ``gob.Register``; the basic types' names are known already). ``first_id`` and
    ``type_ids``/``type_names`` set the ids (and names) of the Go process the stream
    pretends to come from (see ``TypeTable``); several encoders may share one
    ``TypeTable``, as several Go encoders share one process.
    """

    def __init__(self, *, first_id=65, registry=None, type_ids=None, type_names=None, table=None):
        self._table = table if table is not None else TypeTable(first_id, type_ids, type_names)
        self._registry = dict(BASIC_NAMES)
        self._registry.update(registry or {})
        self._sent = {}
        self._w = []
        self._plans = {}  # struct type -> [(field number, name, field writer)]

    @property
    def table(self):
        """The ``TypeTable`` of the Go process this stream pretends to come from."""
        return self._table

    def register(self, name, gotype):
        """Name a concrete type for interface values (Go's ``gob.RegisterName``)."""
        self._registry[name] = gotype

    def encode(self, value, gotype):
        """The stream bytes for one more value of type ``gotype`` (type definitions first)."""
        if value is None and isinstance(gotype, gt.Pointer):
            raise GobError(f"cannot encode nil pointer of type {gotype.go_string()}")
        known = len(self._sent)
        out = bytearray()
        self._w = [out]
        try:
            b = bytearray()
            self._send_type_descriptor(out, _State(b), gotype)
            put_int(b, self._sent.get(gt.base(gotype), 0))
            self._encode(b, value, gotype)
            self._write_message(out, b)
        except BaseException as e:
            self._failed(e, known, value, gotype)
        return bytes(out)

    def _failed(self, e, known, value, gotype):
        """Undo a failed ``encode``/``describe`` (nothing of it was written: its types are
        described again next time) and raise ``GobError`` for a bad value or type."""
        for t in list(self._sent)[known:]:  # dicts keep their order
            del self._sent[t]
        if isinstance(e, RecursionError):
            raise GobError("value or type nested too deeply") from None
        if isinstance(e, (TypeError, ValueError, OverflowError)) and not isinstance(e, GobError):
            # e.g. len(5), a struct declared but not defined, a lone surrogate in a str
            raise GobError(f"cannot encode {type(value).__name__} as "
                           f"{_type_text(gotype)}: {e}") from e
        raise e

    def describe(self, gotype):
        """The type definitions a value of ``gotype`` needs that the stream has not had yet
        (what Go writes before that value); later ``encode`` calls send only values."""
        known = len(self._sent)
        out = bytearray()
        self._w = [out]
        try:
            self._send_type_descriptor(out, _State(bytearray()), gotype)
        except BaseException as e:
            self._failed(e, known, None, gotype)
        return bytes(out)

    # -- types (Go's sendTypeDescriptor, sendType, sendActualType) --

    @staticmethod
    def _write_message(w, b):
        put_uint(w, len(b))
        w += b
        del b[:]

    def _send_type_descriptor(self, w, state, t):
        rt = t if _is_external(t) else gt.base(t)
        if rt not in self._sent and not self._send_type(w, state, rt):
            self._sent[rt] = self._table.info(t)[0]

    def _send_type(self, w, state, t):
        bt = gt.base(t)
        if not _is_external(t) and (isinstance(bt, (gt.Scalar, gt.Interface)) or _is_bytes(bt)):
            return False
        return self._send_actual_type(w, state, t, bt)

    def _send_actual_type(self, w, state, t, actual):
        if actual in self._sent:
            return False
        tid, g = self._table.info(t)
        put_int(state.b, -tid)
        state.b += _wire_type(g)
        self._write_message(w, state.b)
        self._sent[actual] = tid
        if t != actual:
            self._sent[t] = tid
        if isinstance(actual, gt.Struct):
            for _, ftype in actual.fields:
                self._send_type(w, state, ftype)
        elif isinstance(actual, (gt.Array, gt.Slice)):
            self._send_type(w, state, actual.elem)
        elif isinstance(actual, gt.Map):
            self._send_type(w, state, actual.key)
            self._send_type(w, state, actual.elem)
        return True

    # -- values (Go's encode, encodeStruct, encodeSingle and the ops) --

    def _encode(self, b, value, t):
        bt = gt.base(t)
        if isinstance(bt, gt.Struct) and not _is_external(t):
            self._encode_struct(b, bt, value)
        else:
            self._op(t, _State(b, 0, True), 0, value)

    def _encode_struct(self, b, t, value):
        plan = self._plans.get(t)
        if plan is None:
            plan = self._plans[t] = [(i, name, self._field_writer(ftype))
                                     for i, (name, ftype) in enumerate(t.fields)]
        last = -1
        if type(value) is dict:
            get = value.get
            for i, name, write in plan:
                if write(b, get(name), i - last):
                    last = i
        else:
            for i, name, write in plan:
                if write(b, _get_field(value, name), i - last):
                    last = i
        b.append(0)

    def _field_writer(self, t):
        """A function ``write(b, value, delta) -> bool`` for a struct field of type ``t``:
        it writes the field delta and the value unless the value is zero (then it writes
        nothing and returns False). Scalars, times and structs get their own fast writers;
        other kinds go through ``_op``."""
        if isinstance(t, gt.Pointer) and not _is_external(t):
            inner = self._field_writer(gt.base(t))
            return lambda b, v, d: v is not None and inner(b, v, d)
        kind = t.wire_id if isinstance(t, gt.Scalar) else None
        if kind in (gt.STRING_ID, gt.BYTES_ID):
            def write(b, v, d):
                if v is None:
                    return False
                if isinstance(v, str):  # subclasses too, as everywhere else
                    v = v.encode("utf-8", "surrogateescape")
                elif not isinstance(v, (bytes, bytearray, memoryview)):
                    raise GobError(f"{t.name} needs str or bytes, not {type(v).__name__}")
                if not len(v):
                    return False
                put_uint(b, d)
                put_uint(b, len(v))
                b += v
                return True
        elif kind == gt.FLOAT_ID and t.bits == 64:
            def write(b, v, d):
                if not v:  # None, 0.0 and -0.0 (Go's f != 0); NaN is sent
                    return False
                put_uint(b, d)
                put_float(b, v if type(v) is float else _number(v, float))
                return True
        elif kind in (gt.INT_ID, gt.UINT_ID):
            signed = kind == gt.INT_ID

            def write(b, v, d):
                if v is None:
                    return False
                v = _int_value(t, v)
                if not v:
                    return False
                put_uint(b, d)
                if signed:
                    put_int(b, v)
                else:
                    put_uint(b, v)
                return True
        elif isinstance(t, gt.Struct):
            def write(b, v, d):
                put_uint(b, d)  # a struct field is sent even when zero, as Go does
                self._encode_struct(b, t, v)
                return True
        elif t == gt.TIME:
            def write(b, v, d):
                if v is None or (isinstance(v, GoTime) and v.offset is None and v.is_zero()):
                    return False
                data = _opaque_bytes(t, v)
                put_uint(b, d)
                put_uint(b, len(data))
                b += data
                return True
        else:
            def write(b, v, d):
                state = _State(b, -d)
                self._op(t, state, 0, v)
                return state.fieldnum == 0
        return write

    def _encode_array(self, b, elem, values):
        state = _State(b, -1, True)
        put_uint(b, len(values))
        for v in values:
            self._op(elem, state, None, v)

    def _op(self, t, state, field, v):
        """Encode ``v`` of type ``t`` as struct field ``field`` (None: an element)."""
        if isinstance(t, gt.Pointer):
            if v is None:
                if state.send_zero:
                    raise GobError(f"cannot encode nil pointer of type {t.go_string()}")
                return  # a nil pointer field is left out
            if _is_external(t):  # Go calls the marshaler on the pointer: sent even if zero
                data = _opaque_bytes(gt.base(t), v)
                state.update(field)
                put_uint(state.b, len(data))
                state.b += data
                return
            t = gt.base(t)
        b = state.b
        if isinstance(t, gt.Scalar):
            kind = t.wire_id
            if kind == gt.STRING_ID or kind == gt.BYTES_ID:
                if v is None:
                    v = b""
                elif isinstance(v, str):
                    v = v.encode("utf-8", "surrogateescape")
                elif not isinstance(v, (bytes, bytearray, memoryview)):
                    raise GobError(f"{t.name} needs str or bytes, not {type(v).__name__}")
                if len(v) or state.send_zero:
                    state.update(field)
                    put_uint(b, len(v))
                    b += v
            elif kind == gt.INT_ID or kind == gt.UINT_ID:
                v = 0 if v is None else _int_value(t, v)
                if v or state.send_zero:
                    state.update(field)
                    if kind == gt.INT_ID:
                        put_int(b, v)
                    else:
                        put_uint(b, v)
            elif kind == gt.FLOAT_ID:
                v = 0.0 if v is None else _number(v, float)
                if t.bits == 32:
                    v = _to_float32(v)
                if v != 0 or state.send_zero:
                    state.update(field)
                    put_float(b, v)
            elif kind == gt.BOOL_ID:
                if v is not None and not isinstance(v, bool):
                    raise GobError(f"bool needs a bool, not {type(v).__name__}")
                if v or state.send_zero:
                    state.update(field)
                    b.append(1 if v else 0)
            else:  # complex
                v = 0j if v is None else _number(v, complex)
                if t.bits == 32:
                    v = complex(_to_float32(v.real), _to_float32(v.imag))
                if v != 0 or state.send_zero:
                    state.update(field)
                    put_float(b, v.real)
                    put_float(b, v.imag)
        elif isinstance(t, gt.Struct):
            state.update(field)
            self._encode_struct(b, t, v)
        elif isinstance(t, gt.Slice):
            if _is_bytes(t):
                return self._op(gt.BYTES, state, field, v)
            v = () if v is None else _sequence(t, v)
            if len(v) or state.send_zero:
                state.update(field)
                self._encode_array(b, t.elem, v)
        elif isinstance(t, gt.Array):
            v = gt.zero_value(t) if v is None else _sequence(t, v)
            if len(v) != t.length:
                raise GobError(f"{t.go_string()} needs {t.length} elements, not {len(v)}")
            state.update(field)
            self._encode_array(b, t.elem, v)
        elif isinstance(t, gt.Map):
            if v is None and not state.send_zero:
                return  # a nil map is left out; an empty one is sent
            items = () if v is None else (v.items() if isinstance(v, Mapping) else list(v))
            state.update(field)
            put_uint(b, len(items))
            inner = _State(b, -1, True)
            for key, elem in items:
                self._op(t.key, inner, None, key)
                self._op(t.elem, inner, None, elem)
        elif isinstance(t, gt.Interface):
            if v is None and not state.send_zero:
                return
            state.update(field)
            self._encode_interface(b, v)
        elif isinstance(t, gt.Opaque):
            if v is None or (isinstance(v, GoTime) and t == gt.TIME and v.offset is None
                             and v.is_zero()):
                if not state.send_zero:
                    return  # Go leaves out a marshaler whose value is the zero value
                v = GoTime() if t == gt.TIME else b""
            data = _opaque_bytes(t, v)
            state.update(field)
            put_uint(b, len(data))
            b += data
        else:
            raise GobError(f"not a Go type: {t!r}")

    def _encode_interface(self, b, v):
        if v is None:
            b.append(0)
            return
        if not isinstance(v, GoInterface):
            raise GobError(f"an interface value must be GoInterface or None, not {type(v).__name__}")
        t = self._registry.get(v.name)
        if t is None:
            raise GobError(f"type not registered for interface: {v.name}")
        if v.value is None and isinstance(t, gt.Pointer):
            raise GobError(f"cannot encode nil pointer of type {t.go_string()} inside interface")
        name = v.name.encode()
        put_uint(b, len(name))
        b += name
        state = _State(b, -1, True)
        self._send_type_descriptor(self._w[-1], state, t)
        put_int(b, self._sent.get(gt.base(t), 0))
        self._w.append(b)
        data = bytearray()
        self._encode(data, v.value, t)
        self._w.pop()
        self._write_message(b, data)


def encode(value, gotype, *, first_id=65, registry=None, type_ids=None):
    """A whole gob stream holding one value, as a fresh Go encoder writes it.

    ``first_id`` is the first type id the Go process hands out (65 for a fresh Go 1.19
    process); ``registry`` names interfaces' concrete types; raises ``GobError`` for a value
    that does not fit its type.
    """
    return Encoder(first_id=first_id, registry=registry, type_ids=type_ids).encode(value, gotype)
