"""The decoder's runtime: stream and message handling, type definitions, and the helpers
both the interpreter and the generated code call."""

import struct

from statserver.gob.errors import GobError
from statserver.gob.targets import ANY, describe_mismatch
from statserver.gob.values import FrozenStruct, GoInterface, GoOpaque, GoTime
from statserver.gob.wiretypes import (
    FIRST_USER_ID,
    PREDEFINED,
    _read_type_id,
    parse_wire_type,
    read_uint,
)

_UNIX_FROM_GO = 62135596800  # seconds from Go's year 1 to the Unix epoch


class _Context:
    """The type definitions a stream has sent so far and the plans and compiled decoders
    made from them. A cached context is shared by streams with the same leading
    definitions; a stream that defines more types copies it first."""

    __slots__ = ("types", "plans", "tops", "interpreted", "ntypes", "shared")

    def __init__(self):
        self.types = dict(PREDEFINED)
        self.plans = {}  # (id, target) -> plan.Plan
        self.tops = {}  # (id, target) -> compiled top-level decoder
        self.interpreted = set()  # (id, target) decoded once by the interpreter
        self.ntypes = 0
        self.shared = False

    def copy(self):
        c = _Context()
        c.types = dict(self.types)
        c.plans = dict(self.plans)
        c.tops = dict(self.tops)
        c.interpreted = set(self.interpreted)
        c.ntypes = self.ntypes
        return c


class _State:
    """One decoding run: the stream, the current message's end, the nesting depth, and
    ``top``, which gives the decoder of a value type (interpreted or compiled)."""

    __slots__ = ("data", "end", "depth", "maxd", "ctx", "budget", "limits", "top")


def _next_message(s, pos):
    """Start the message whose length prefix is at ``pos``; return where its body starts."""
    data = s.data
    start = pos
    if pos >= len(data):
        raise GobError("stream ends where a message should start", pos)
    length, pos = read_uint(data, pos, len(data))
    if length == 0:
        raise GobError("empty message", start)
    if length > s.limits.max_message:
        raise GobError(f"message of {length} bytes exceeds max_message={s.limits.max_message}", start)
    if length > len(data) - pos:
        raise GobError(f"message of {length} bytes runs past the end of the stream ({len(data) - pos} bytes left)", start)
    s.end = pos + length
    return pos


def _recv_type(s, tid, pos, start):
    ctx = s.ctx
    if tid < FIRST_USER_ID:
        raise GobError(f"type definition for predefined id {tid}", start)
    if tid in ctx.types:
        raise GobError(f"type id {tid} defined twice", start)
    if ctx.ntypes >= s.limits.max_types:
        raise GobError(f"more than max_types={s.limits.max_types} type definitions", start)
    if ctx.shared:
        ctx = s.ctx = ctx.copy()
    wt, pos = parse_wire_type(tid, s.data, pos, s.end, s.limits)
    ctx.types[tid] = wt
    ctx.ntypes += 1
    return pos


def _type_sequence(s, pos, in_interface, first=True):
    """Read type definitions up to the next value's type id (Go's decodeTypeSequence);
    return (id, position), or (None, position) at a clean end of the stream."""
    data = s.data
    while True:
        if pos >= s.end:
            if pos >= len(data):
                if first and not in_interface:
                    return None, pos
                what = "an interface value" if in_interface else "type definitions, before their value"
                raise GobError(f"stream ends after {what}", pos)
            pos = _next_message(s, pos)
        start = pos
        tid, pos = _read_type_id(data, pos, s.end)
        if tid >= 0:
            return tid, pos
        pos = _recv_type(s, -tid, pos, start)
        if pos < s.end:
            if not in_interface:
                raise GobError("extra data after a type definition", pos)
            _, pos = read_uint(data, pos, s.end)  # the byte count of a delimited value
        first = False


# --- helpers (called by generated code too) ------------------------------------------


def _eof(pos):
    raise GobError("unexpected end of message", pos)


def _ulong(buf, pos, end):
    n = 256 - buf[pos]
    if n > 8:
        raise GobError(f"invalid unsigned integer length byte 0x{buf[pos]:02x}", pos)
    start = pos + 1
    if start + n > end:
        raise GobError(f"unsigned integer of {n} bytes runs past the end of its message", pos)
    return int.from_bytes(buf[start : start + n], "big"), start + n


def _toolong(pos, n, left):
    raise GobError(f"length {n} exceeds the {left} bytes left in the message", pos)


def _count(pos, n, left):
    raise GobError(f"element count {n} exceeds the {left} bytes left", pos)


def _arrlen(pos, n, length):
    raise GobError(f"array of length {length} sent with {n} elements", pos)


def _deep(pos):
    raise GobError("nesting exceeds max_depth", pos)


def _range(pos, field):
    raise GobError(f"field number {field} out of range for the struct", pos)


def _single(pos):
    raise GobError("non-zero field delta before a singleton value", pos)


_TIME_V1 = struct.Struct(">Bqih").unpack
_TIME_V2 = struct.Struct(">BqihB").unpack


def parse_time(data):
    """A Go ``time.Time`` from its ``MarshalBinary`` bytes (versions 1 and 2), or None."""
    n = len(data)
    if n == 15 and data[0] == 1:
        _, sec, nsec, offset = _TIME_V1(data)
        offset *= 60
    elif n == 16 and data[0] == 2:
        _, sec, nsec, offset, extra = _TIME_V2(data)
        offset = offset * 60 + extra
    else:
        return None
    if not 0 <= nsec < 1_000_000_000:
        return None
    return _new_tuple(GoTime, (sec - _UNIX_FROM_GO, nsec, None if offset == -60 else offset))


_new_tuple = tuple.__new__  # a NamedTuple's own __new__ costs a Python call


def _time(data, pos):
    """A Go time where the target wants one (the hot path of a stats frame)."""
    if len(data) == 15 and data[0] == 1:
        _, sec, nsec, offset = _TIME_V1(data)
        if 0 <= nsec < 1_000_000_000:
            return _new_tuple(GoTime, (sec - _UNIX_FROM_GO, nsec, None if offset == -1 else offset * 60))
    t = parse_time(data)
    if t is None:
        raise GobError("not a valid Go time.Time encoding", pos)
    return t


def _time_or_opaque(data, name):
    t = parse_time(data)
    return GoOpaque(name, data, "gob") if t is None else t


def _freeze(v):
    """A hashable form of a decoded map key (structs, arrays, slices)."""
    # Plain loops: a level of nesting costs one Python frame (map() or a generator would
    # add a C call, which counts against the recursion limit too)
    if isinstance(v, list):
        out = []
        for x in v:
            out.append(_freeze(x))
        return tuple(out)
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            out[k] = _freeze(x)
        return FrozenStruct(out)
    if isinstance(v, GoInterface):
        return GoInterface(v.name, _freeze(v.value))
    return v


def _zero(s, tid, busy=frozenset(), pos=None):
    """The zero value of an absent field of a container or struct type, for the struct at
    depth ``s.depth`` whose type and enclosing zero values' types are ``busy``: it nests
    from there, within max_depth; absent arrays and structs are charged to the stream's
    allocation budget."""
    wt = s.ctx.types[tid]
    kind = wt.kind
    if kind == "slice":
        return []
    if kind == "map":
        return {}
    if kind not in ("array", "struct"):
        return _immutable_zero(wt)
    if tid in busy:
        return None  # a struct that contains itself: only a nil pointer ends it
    if s.depth + len(busy) > s.maxd:
        raise GobError("zero value of an absent field nests deeper than max_depth", pos)
    busy = busy | {tid}
    n = wt.length if kind == "array" else len(wt.fields)
    charge(s, n, pos)
    # Loops, not comprehensions: one Python frame per level of nesting on every version
    if kind == "array":
        out = []
        for _ in range(n):
            out.append(_zero(s, wt.elem, busy, pos))
        return out
    zero = {}
    for name, fid in wt.fields:
        zero[name] = _zero(s, fid, busy, pos)
    return zero


_SCALAR_ZEROS = {"bool": False, "int": 0, "uint": 0, "float": 0.0, "complex": 0j, "string": "", "bytes": b""}


def charge(s, n, pos):
    """Take ``n`` elements from the stream's allocation budget."""
    s.budget -= n
    if s.budget < 0:
        raise GobError("decoded values would exceed the allocation budget (wide structs or zero values)", pos)


WIDE_STRUCT = 16  # structs with more fields are charged to the budget per value


def _immutable_zero(wt):
    kind = wt.kind
    if kind in _SCALAR_ZEROS:
        return _SCALAR_ZEROS[kind]
    if kind == "interface":
        return None
    if kind == "gob" and wt.name == "Time":
        return GoTime()
    return GoOpaque(wt.name, b"", kind)


def _iface(p, s, buf, pos, end):
    """A generic interface value: nil (None) or GoInterface(name, value). The concrete
    value may bring type definitions with it, which starts a new message. (``p``, the
    interface's plan, is unused: the signature is the interpreter's.)"""
    start = pos
    n, pos = read_uint(buf, pos, end)
    if n > end - pos:
        raise GobError(f"interface type name length {n} exceeds the {end - pos} bytes left", start)
    if n == 0:
        return None, pos
    if n > 1024:
        raise GobError(f"interface type name of {n} bytes is longer than 1024", start)
    name = str(buf[pos : pos + n], "utf-8", "surrogateescape")
    pos += n
    d = s.depth + 1
    if d > s.maxd:
        _deep(start)
    s.depth = d
    cid, pos = _type_sequence(s, pos, True)
    end = s.end
    cstart = pos
    count, pos = read_uint(buf, pos, end)
    if count > end - pos:
        raise GobError(f"interface value length {count} exceeds the {end - pos} bytes left", cstart)
    ctx = s.ctx
    wt = ctx.types.get(cid)
    if wt is not None and wt.kind == "interface":
        raise GobError("interface value whose concrete type is an interface", cstart)
    # The count is not checked further: Go's encoder writes a short one when the value holds
    # an interface whose type definitions come with it, and Go's decoder ignores it.
    value, pos = s.top(ctx, cid, ANY, cstart)(s, buf, pos, end)
    s.depth = d - 1
    return GoInterface(name, value), pos


_FITS = {
    "bool": ("bool",),
    "int": ("int", "uint"),
    "float": ("float", "int", "uint"),
    "complex": ("complex",),
    "str": ("string",),
    "bytes": ("bytes",),
    "time": ("gob", "binary"),
    "opaque": ("gob", "binary", "text"),
    "list": ("slice", "array"),
    "dict": ("map",),
    "struct": ("struct",),
}
UNHASHABLE_KINDS = ("struct", "array", "slice", "map", "interface")


def fits(spec, wt):
    if spec.kind == "any":
        return True
    if spec.kind == "union":
        return any(fits(m, wt) for m in spec.members)
    return wt.kind in _FITS[spec.kind]


def resolve(spec, wt, pos):
    """The target (a union's first fitting member) a wire type decodes into."""
    if spec.kind == "union":
        for m in spec.members:
            if fits(m, wt):
                return m
    elif fits(spec, wt):
        return spec
    raise describe_mismatch(spec, wt, pos)


def struct_slots(wt, spec, pos):
    """For each wire field, the index of the target field it fills (None: skipped), after
    Go's check that a struct target matches at least one wire field."""
    index = {f[0]: j for j, f in enumerate(spec.fields)}
    slots = [index.get(name) for name, _ in wt.fields]
    if wt.fields and spec.fields and all(j is None for j in slots):
        raise GobError(f"no field of the wire struct matches a field of {spec.name}", pos)
    return slots
