"""Decoding gob streams: generic (no target) and typed (into a declared target).

For each value type (and target) the decoder generates a specialised Python function per
struct, slice, array and map type, with scalars inlined, and compiles it once. Streams
that start with the same type-definition messages (every frame of one Knative sender)
share one compiled context from a bounded LRU cache, so a warm frame costs only its value
message. The cache changes only speed: a stream decodes (or fails) the same with or
without it.
"""

import struct
from collections import OrderedDict
from typing import NamedTuple

from statserver.gob.errors import GobError
from statserver.gob.targets import ANY, CONST, describe_mismatch, spec_for
from statserver.gob.values import FrozenStruct, GoInterface, GoOpaque, GoTime
from statserver.gob.wiretypes import (
    ENCODER_KINDS,
    FIRST_USER_ID,
    PREDEFINED,
    _read_type_id,
    check_reachable,
    parse_wire_type,
    reaches_interface,
    read_uint,
)


class Limits(NamedTuple):
    """Decoding limits (keyword options of ``decode``/``decode_all``)."""

    max_size: int = 64 << 20  # bytes in the whole stream
    max_message: int = 16 << 20  # bytes in one message
    max_depth: int = 100  # nesting of values, skipped values and type definitions
    max_types: int = 4096  # type definitions in one stream
    max_fields: int = 4096  # fields of one struct type


DEFAULT_LIMITS = Limits()
CACHE_SIZE = 256
_UNIX_FROM_GO = 62135596800  # seconds from Go's year 1 to the Unix epoch


def _limits(opts):
    if not opts:
        return DEFAULT_LIMITS
    unknown = set(opts) - set(Limits._fields)
    if unknown:
        raise TypeError(f"unknown gob decoding option(s): {', '.join(sorted(unknown))}")
    for k, v in opts.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"gob limit {k} must be a positive int, not {v!r}")
    return DEFAULT_LIMITS._replace(**opts)


# --- runtime state ---------------------------------------------------------------------


class _Context:
    """The type definitions a stream has sent so far and the decoders compiled from them.
    A cached context is shared by streams with the same leading definitions; a stream that
    defines more types copies it first."""

    __slots__ = ("types", "checked", "iface", "funcs", "tops", "ntypes", "shared")

    def __init__(self):
        self.types = dict(PREDEFINED)
        self.checked = set()  # ids whose reachable types are all defined and sound
        self.iface = {}  # id -> whether its values can contain an interface
        self.funcs = {}  # (id, spec) -> compiled value decoder
        self.tops = {}  # (id, spec) -> compiled top-level decoder
        self.ntypes = 0
        self.shared = False

    def copy(self):
        c = _Context()
        c.types = dict(self.types)
        c.checked = set(self.checked)
        c.iface = dict(self.iface)
        c.funcs = dict(self.funcs)
        c.tops = dict(self.tops)
        c.ntypes = self.ntypes
        return c


class _State:
    __slots__ = ("data", "end", "depth", "maxd", "ctx", "budget", "limits")


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


def _top(ctx, tid, spec, pos):
    f = ctx.tops.get((tid, spec))
    if f is None:
        check_reachable(ctx.types, tid, ctx.checked, pos)
        f = _Unit(ctx, pos).build_top(tid, spec)
        ctx.tops[(tid, spec)] = f
    return f


# --- helpers called by generated code ------------------------------------------------


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
    return GoTime(sec - _UNIX_FROM_GO, nsec, None if offset == -60 else offset)


def _time(data, pos):
    t = parse_time(data)
    if t is None:
        raise GobError("not a valid Go time.Time encoding", pos)
    return t


def _time_or_opaque(data, name):
    t = parse_time(data)
    return GoOpaque(name, data, "gob") if t is None else t


def _freeze(v):
    """A hashable form of a decoded map key (structs, arrays, slices)."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return FrozenStruct((k, _freeze(x)) for k, x in v.items())
    if isinstance(v, GoInterface):
        return GoInterface(v.name, _freeze(v.value))
    return v


def _zero(s, tid, busy=frozenset()):
    """The zero value of an absent field of a container or struct type; absent arrays and
    structs are charged to the stream's allocation budget."""
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
    if len(busy) >= s.maxd:
        raise GobError("zero value nests deeper than max_depth", None)
    busy = busy | {tid}
    n = wt.length if kind == "array" else len(wt.fields)
    s.budget -= n
    if s.budget < 0:
        raise GobError("zero values of absent fields would exceed the allocation budget", None)
    if kind == "array":
        return [_zero(s, wt.elem, busy) for _ in range(n)]
    return {name: _zero(s, fid, busy) for name, fid in wt.fields}


_SCALAR_ZEROS = {"bool": False, "int": 0, "uint": 0, "float": 0.0, "complex": 0j, "string": "", "bytes": b""}


def _immutable_zero(wt):
    kind = wt.kind
    if kind in _SCALAR_ZEROS:
        return _SCALAR_ZEROS[kind]
    if kind == "interface":
        return None
    if kind == "gob" and wt.name == "Time":
        return GoTime()
    return GoOpaque(wt.name, b"", kind)


def _iface(s, buf, pos, end):
    """A generic interface value: nil (None) or GoInterface(name, value). The concrete
    value may bring type definitions with it, which starts a new message."""
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
    vstart = pos
    value, pos = _top(ctx, cid, ANY, cstart)(s, buf, pos, end)
    if s.end == end and pos - vstart != count:
        raise GobError(f"interface value of {pos - vstart} bytes sent with length {count}", cstart)
    s.depth = d - 1
    return GoInterface(name, value), pos


_MISSING = object()
_HELPERS = {
    "_eof": _eof,
    "_ulong": _ulong,
    "_ud": struct.Struct("<d").unpack,
    "_toolong": _toolong,
    "_count": _count,
    "_arrlen": _arrlen,
    "_deep": _deep,
    "_range": _range,
    "_single": _single,
    "_time": _time,
    "_time_or_opaque": _time_or_opaque,
    "_Opaque": GoOpaque,
    "_freeze": _freeze,
    "_zero": _zero,
    "_iface": _iface,
    "_M": _MISSING,
    "_PAD": (b"", b"") + tuple(bytes(8 - n) for n in range(1, 9)),
    "_tn": tuple.__new__,
}

# --- code generation -----------------------------------------------------------------

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
_UNHASHABLE_KINDS = ("struct", "array", "slice", "map", "interface")


def _fits(spec, wt):
    if spec.kind == "any":
        return True
    if spec.kind == "union":
        return any(_fits(m, wt) for m in spec.members)
    return wt.kind in _FITS[spec.kind]


def _uint(lines, ind, var, check=True):
    if check:
        lines.append(f"{ind}if pos >= end: _eof(pos)")
    lines.append(f"{ind}{var} = buf[pos]")
    lines.append(f"{ind}if {var} < 128: pos += 1")
    lines.append(f"{ind}else: {var}, pos = _ulong(buf, pos, end)")


class _Unit:
    """One compilation: Python source for the decoders a value type (and target) needs."""

    def __init__(self, ctx, pos):
        self.ctx = ctx
        self.pos = pos
        self.ns = dict(_HELPERS)
        self.names = {}
        self.todo = []
        self.made = []
        self.lines = []

    def const(self, value):
        name = f"k{len(self.ns)}"
        self.ns[name] = value
        return name

    def resolve(self, spec, wt):
        if spec.kind == "union":
            for m in spec.members:
                if _fits(m, wt):
                    return m
        elif _fits(spec, wt):
            return spec
        raise describe_mismatch(spec, wt, self.pos)

    def may_switch(self, tid):
        return reaches_interface(self.ctx.types, tid, self.ctx.iface)

    def func(self, tid, spec):
        key = (tid, spec)
        name = self.names.get(key)
        if name is None:
            name = self.names[key] = f"f{len(self.names)}_{tid}"
            f = self.ctx.funcs.get(key)
            if f is not None:
                self.ns[name] = f
            else:
                self.todo.append((tid, spec, name))
        return name

    def build_top(self, tid, spec):
        wt = self.ctx.types[tid]
        spec = self.resolve(spec, wt)
        if wt.kind == "struct":
            top = self.func(tid, spec)
        else:
            top = "top"
            L = self.lines
            L.append("def top(s, buf, pos, end):")
            L.append("    q = pos")
            _uint(L, "    ", "x")
            L.append("    if x: _single(q)")
            self.value(L, "    ", tid, spec, "v", reload=False)
            L.append("    return v, pos")
        while self.todo:
            tid, spec, name = self.todo.pop()
            self.made.append((tid, spec, name))
            self.gen(tid, spec, name)
        source = "\n".join(self.lines) + "\n"
        self.ns["__source__"] = source
        code = compile(source, "<gob decoder>", "exec")
        exec(code, self.ns)
        for tid, spec, name in self.made:
            self.ctx.funcs[(tid, spec)] = self.ns[name]
        return self.ns[top]

    # Emit code that reads one value of wire type tid (target spec) into var.
    def value(self, L, ind, tid, spec, var, reload=True):
        wt = self.ctx.types[tid]
        spec = self.resolve(spec, wt)
        kind = wt.kind
        sk = spec.kind
        if kind == "bool":
            _uint(L, ind, "x")
            L.append(f"{ind}{var} = x != 0")
        elif kind == "int":
            _uint(L, ind, "x")
            conv = "float" if sk == "float" else ""
            L.append(f"{ind}{var} = {conv}(~(x >> 1) if x & 1 else x >> 1)")
        elif kind == "uint":
            _uint(L, ind, "x")
            L.append(f"{ind}{var} = {'float(x)' if sk == 'float' else 'x'}")
        elif kind == "float":
            # The uint's big-endian bytes, zero-padded on the left, are the float's
            # little-endian bytes (gob sends floats byte-reversed).
            L.append(f"{ind}if pos >= end: _eof(pos)")
            L.append(f"{ind}x = buf[pos]")
            L.append(f"{ind}if x < 128:")
            L.append(f'{ind}    {var} = _ud(x.to_bytes(8, "big"))[0]')
            L.append(f"{ind}    pos += 1")
            L.append(f"{ind}else:")
            L.append(f"{ind}    x = pos + 257 - x")
            L.append(f"{ind}    if x > end or x - pos > 9: _ulong(buf, pos, end)")
            L.append(f"{ind}    {var} = _ud(_PAD[x - pos] + buf[pos + 1:x])[0]")
            L.append(f"{ind}    pos = x")
        elif kind == "complex":
            _uint(L, ind, "x")
            _uint(L, ind, "y")
            L.append(f'{ind}{var} = complex(_ud(x.to_bytes(8, "big"))[0], _ud(y.to_bytes(8, "big"))[0])')
        elif kind in ("string", "bytes") or kind in ENCODER_KINDS:
            L.append(f"{ind}q = pos")
            _uint(L, ind, "n")
            L.append(f"{ind}if n > end - pos: _toolong(q, n, end - pos)")
            if kind == "string":
                L.append(f"{ind}try: {var} = buf[pos:pos + n].decode()")
                L.append(f'{ind}except UnicodeDecodeError: {var} = buf[pos:pos + n].decode("utf-8", "surrogateescape")')
            elif kind == "bytes":
                L.append(f"{ind}{var} = buf[pos:pos + n]")
            elif sk == "time":
                L.append(f"{ind}{var} = _time(buf[pos:pos + n], q)")
            elif kind == "gob" and wt.name == "Time" and sk == "any":
                L.append(f"{ind}{var} = _time_or_opaque(buf[pos:pos + n], {self.const(wt.name)})")
            else:
                L.append(f"{ind}{var} = _Opaque({self.const(wt.name)}, buf[pos:pos + n], {kind!r})")
            L.append(f"{ind}pos += n")
        elif kind == "interface":
            L.append(f"{ind}{var}, pos = _iface(s, buf, pos, end)")
            if reload:
                L.append(f"{ind}end = s.end")
        else:
            L.append(f"{ind}{var}, pos = {self.func(tid, spec)}(s, buf, pos, end)")
            if reload and self.may_switch(tid):
                L.append(f"{ind}end = s.end")

    def gen(self, tid, spec, name):
        wt = self.ctx.types[tid]
        L = self.lines
        L.append(f"def {name}(s, buf, pos, end):")
        L.append("    d = s.depth + 1")
        L.append("    if d > s.maxd: _deep(pos)")
        L.append("    s.depth = d")
        getattr(self, "gen_" + wt.kind)(L, wt, spec)

    def _bound(self, wt):
        return "len(buf) - pos" if self.may_switch(wt.elem) or (wt.key and self.may_switch(wt.key)) else "end - pos"

    def gen_slice(self, L, wt, spec, length=None):
        L.append("    q = pos")
        _uint(L, "    ", "n")
        if length is not None:
            L.append(f"    if n != {length}: _arrlen(q, n, {length})")
        bound = self._bound(wt)
        L.append(f"    if n > {bound}: _count(q, n, {bound})")
        L.append("    out = []")
        L.append("    app = out.append")
        L.append("    for _ in range(n):")
        L.append("        if pos >= end: _eof(pos)")
        self.value(L, "        ", wt.elem, spec.elem if spec.kind == "list" else ANY, "v")
        L.append("        app(v)")
        L.append("    s.depth = d - 1")
        L.append("    return out, pos")

    def gen_array(self, L, wt, spec):
        self.gen_slice(L, wt, spec, wt.length)

    def gen_map(self, L, wt, spec):
        typed = spec.kind == "dict"
        L.append("    q = pos")
        _uint(L, "    ", "n")
        bound = self._bound(wt)
        L.append(f"    if n > {bound}: _count(q, n, {bound})")
        L.append("    out = {}")
        L.append("    for _ in range(n):")
        self.value(L, "        ", wt.key, spec.key if typed else ANY, "k")
        if not typed and self.ctx.types[wt.key].kind in _UNHASHABLE_KINDS:
            L.append("        k = _freeze(k)")
        self.value(L, "        ", wt.elem, spec.elem if typed else ANY, "v")
        L.append("        out[k] = v")
        L.append("    s.depth = d - 1")
        L.append("    return out, pos")

    def gen_struct(self, L, wt, spec):
        types = self.ctx.types
        fields = wt.fields
        after = []
        if spec.kind == "any":
            slots = []
            for i, (_, fid) in enumerate(fields):
                fwt = types[fid]
                if fwt.kind in ("slice", "map", "array", "struct"):
                    L.append(f"    v{i} = _M")
                    after.append(f"    if v{i} is _M: v{i} = _zero(s, {fid}, {self.const(frozenset((wt.id,)))})")
                else:
                    L.append(f"    v{i} = {self.const(_immutable_zero(fwt))}")
                slots.append((f"v{i}", fid, ANY))
            result = "{" + ", ".join(f"{fname!r}: v{i}" for i, (fname, _) in enumerate(fields)) + "}"
        else:
            index = {}
            for j, (tname, tspec, dkind, default) in enumerate(spec.fields):
                index[tname] = (j, tspec)
                if dkind == CONST:
                    L.append(f"    t{j} = {self.const(default)}")
                else:
                    L.append(f"    t{j} = _M")
                    after.append(f"    if t{j} is _M: t{j} = {self.const(default)}()")
            slots = []
            for fname, fid in fields:
                if fname in index:
                    j, tspec = index[fname]
                    slots.append((f"t{j}", fid, tspec))
                else:
                    slots.append(("_", fid, ANY))
            if fields and spec.fields and all(v == "_" for v, _, _ in slots):
                raise GobError(f"no field of the wire struct matches a field of {spec.name}", self.pos)
            args = ", ".join(f"t{j}" for j in range(len(spec.fields)))
            cls = self.const(spec.cls)
            if spec.namedtuple:
                result = f"_tn({cls}, ({args}{',' if len(spec.fields) == 1 else ''}))"
            else:
                kw = ", ".join(f"{f[0]}=t{j}" for j, f in enumerate(spec.fields))
                result = f"{cls}({kw})"
        L.append("    fn = -1")
        L.append("    while pos < end:")
        L.append("        q = pos")
        _uint(L, "        ", "x", check=False)
        L.append("        if not x: break")
        L.append("        fn += x")
        if slots:
            self._dispatch(L, "        ", slots, 0, len(slots))
        else:
            L.append("        _range(q, fn)")
        L.extend(after)
        L.append("    s.depth = d - 1")
        L.append(f"    return {result}, pos")

    def _dispatch(self, L, ind, slots, lo, hi):
        """Branch on the field number in [lo, hi): a balanced tree for big structs."""
        if hi - lo <= 4:
            for i in range(lo, hi):
                var, fid, fspec = slots[i]
                L.append(f"{ind}{'if' if i == lo else 'elif'} fn == {i}:")
                self.value(L, ind + "    ", fid, fspec, var)
            L.append(f"{ind}else: _range(q, fn)")
            return
        mid = (lo + hi) // 2
        L.append(f"{ind}if fn < {mid}:")
        self._dispatch(L, ind + "    ", slots, lo, mid)
        L.append(f"{ind}else:")
        self._dispatch(L, ind + "    ", slots, mid, hi)


# --- entry points --------------------------------------------------------------------

_cache = OrderedDict()
_mru = [b"", None]  # the most recently used (prefix, context)


def clear_cache():
    """Forget every compiled context (the next stream of each sender decodes cold)."""
    _cache.clear()
    _mru[0], _mru[1] = b"", None


def _definitions_prefix(data):
    """Length of the leading run of whole type-definition messages."""
    pos = 0
    n = len(data)
    while pos < n:
        try:
            length, p = read_uint(data, pos, n)
            if length == 0 or length > n - p:
                break
            tid, _ = _read_type_id(data, p, p + length)
        except GobError:
            break
        if tid >= 0:
            break
        pos = p + length
    return pos


def _context(s, lim, use_cache):
    """The context for a stream, from the cache when its leading type definitions were
    seen before; return it and where decoding continues."""
    data = s.data
    if not use_cache:
        return _Context(), 0
    prefix = _mru[0]
    if prefix and data.startswith(prefix) and _mru[1][0] == lim:
        return _mru[1][1], len(prefix)
    end = _definitions_prefix(data)
    if not end:
        return _Context(), 0
    prefix = data[:end]
    key = (prefix, lim)
    ctx = _cache.get(key)
    if ctx is None:
        ctx = s.ctx = _Context()
        pos = 0
        while pos < end:
            pos = _next_message(s, pos)
            start = pos
            tid, pos = _read_type_id(data, pos, s.end)
            pos = _recv_type(s, -tid, pos, start)
            if pos < s.end:
                raise GobError("extra data after a type definition", pos)
        ctx.shared = True
        _cache[key] = ctx
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    _mru[0], _mru[1] = prefix, (lim, ctx)
    return ctx, end


def _run(data, target, opts, single, use_cache=True):
    lim = _limits(opts)
    spec = spec_for(target)
    if not isinstance(data, bytes):
        data = bytes(data)
    try:
        return _decode(data, spec, lim, single, use_cache)
    except GobError:
        raise
    except RecursionError:
        raise GobError("values nest too deeply for Python's recursion limit (lower max_depth)") from None
    except MemoryError:
        raise GobError("out of memory decoding the stream") from None
    except Exception as exc:
        raise GobError(f"cannot decode the stream: {type(exc).__name__}: {exc}") from exc


def _decode(data, spec, lim, single, use_cache):
    n = len(data)
    if n > lim.max_size:
        raise GobError(f"stream of {n} bytes exceeds max_size={lim.max_size}", 0)
    s = _State()
    s.data = data
    s.depth = 0
    s.maxd = lim.max_depth
    s.budget = 4096 + 8 * n
    s.limits = lim
    s.end = 0
    s.ctx, pos = _context(s, lim, use_cache)
    s.end = pos
    first = pos == 0
    out = []
    max_message = lim.max_message
    while True:
        # Fast path for the usual value message: a one-byte length, then a user type id
        # in two bytes (0xff, id*2); anything else takes Go's general route.
        if pos + 3 < n and data[pos + 2] & 1 == 0 and data[pos + 1] == 0xFF:
            length = data[pos]
            if 2 < length < 128 and length <= max_message and length < n - pos:
                s.end = pos + 1 + length
                tid = data[pos + 2] >> 1
                pos += 3
            else:
                tid, pos = _type_sequence(s, pos, False, first)
        else:
            tid, pos = _type_sequence(s, pos, False, first)
        if tid is None:
            break
        first = True
        v, pos = _top(s.ctx, tid, spec, pos)(s, data, pos, s.end)
        if pos != s.end:
            raise GobError("extra data after a value in its message", pos)
        out.append(v)
        if single:
            if pos < n:
                raise GobError("data after the stream's one value (decode_all reads several)", pos)
            return v
    if single:
        raise GobError("stream holds no value", n)
    return out


def decode(data, target=None, **limits):
    """Decode a stream holding exactly one value (after its type definitions).

    Without ``target`` the value is decoded generically (see ``docs/gob.md``); with one
    (a dataclass, NamedTuple or other supported annotation) it is decoded into it.
    Raises ``GobError`` for any malformed stream, a stream with no value or with more
    than one, or a value that does not fit the target."""
    return _run(data, target, limits, True)


def decode_all(data, target=None, **limits):
    """Decode every value of a stream, in order, into a list (each into ``target``)."""
    return _run(data, target, limits, False)
