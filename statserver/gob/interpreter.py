"""The slow path: decoding by walking the wire types, with nothing compiled.

A value type's first use is interpreted (a one-off or hostile frame never pays for code
generation); from its second use the compiled code of ``compiler.py`` takes over. Both make
the same checks in the same order and raise the same errors; a property test compares them.
"""

import struct

from statserver.gob.runtime import (
    UNHASHABLE_KINDS,
    WIDE_STRUCT,
    _arrlen,
    _count,
    _deep,
    _eof,
    _freeze,
    _iface,
    _immutable_zero,
    _range,
    _single,
    _time,
    _time_or_opaque,
    _toolong,
    _zero,
    charge,
    resolve,
    struct_slots,
)
from statserver.gob.targets import ANY, CONST
from statserver.gob.values import GoOpaque
from statserver.gob.wiretypes import ENCODER_KINDS, reaches_interface, read_uint

_float_from_be = struct.Struct("<d").unpack  # gob sends a float's bytes reversed, as a uint
_MISSING = object()
_CONTAINERS = ("slice", "map", "array", "struct")


def check_plan(ctx, tid, spec, pos):
    """Raise, before any value byte is read, every error the compiler would raise while
    generating code for this type and target: targets that do not fit, and struct targets
    that match no wire field."""
    todo, seen = [(tid, spec)], set()
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        t, sp = item
        wt = ctx.types[t]
        sp = resolve(sp, wt, pos)
        kind = wt.kind
        if kind == "struct":
            if sp.kind == "struct":
                slots = struct_slots(wt, sp, pos)
                for j, (_, fid) in zip(slots, wt.fields, strict=True):
                    todo.append((fid, ANY if j is None else sp.fields[j][1]))
            else:
                todo.extend((fid, ANY) for _, fid in wt.fields)
        elif kind in ("slice", "array"):
            todo.append((wt.elem, sp.elem if sp.kind == "list" else ANY))
        elif kind == "map":
            typed = sp.kind == "dict"
            todo.append((wt.key, sp.key if typed else ANY))
            todo.append((wt.elem, sp.elem if typed else ANY))


def top(ctx, tid, spec, pos):
    """An interpreting decoder of a top-level (or interface) value of type ``tid``."""
    check_plan(ctx, tid, spec, pos)
    if ctx.types[tid].kind == "struct":

        def decode_struct(s, buf, pos, end):
            return value(s, buf, pos, end, tid, spec)

        return decode_struct

    def decode_single(s, buf, pos, end):
        q = pos
        x, pos = read_uint(buf, pos, end)
        if x:
            _single(q)
        return value(s, buf, pos, end, tid, spec)

    return decode_single


def value(s, buf, pos, end, tid, spec):
    """Decode one value of wire type ``tid`` into target ``spec``; return it and the next
    position (``s.end`` may have moved on if the value brought new messages)."""
    wt = s.ctx.types[tid]
    spec = resolve(spec, wt, pos)
    kind = wt.kind
    sk = spec.kind
    if kind == "bool":
        x, pos = read_uint(buf, pos, end)
        return x != 0, pos
    if kind == "int":
        x, pos = read_uint(buf, pos, end)
        v = ~(x >> 1) if x & 1 else x >> 1
        return (float(v) if sk == "float" else v), pos
    if kind == "uint":
        x, pos = read_uint(buf, pos, end)
        return (float(x) if sk == "float" else x), pos
    if kind == "float":
        x, pos = read_uint(buf, pos, end)
        return _float_from_be(x.to_bytes(8, "big"))[0], pos
    if kind == "complex":
        x, pos = read_uint(buf, pos, end)
        y, pos = read_uint(buf, pos, end)
        return complex(_float_from_be(x.to_bytes(8, "big"))[0], _float_from_be(y.to_bytes(8, "big"))[0]), pos
    if kind in ("string", "bytes") or kind in ENCODER_KINDS:
        q = pos
        n, pos = read_uint(buf, pos, end)
        if n > end - pos:
            _toolong(q, n, end - pos)
        data = buf[pos : pos + n]
        pos += n
        if kind == "string":
            return str(data, "utf-8", "surrogateescape"), pos
        if kind == "bytes":
            return data, pos
        if sk == "time":
            return _time(data, q), pos
        if kind == "gob" and wt.name == "Time" and sk == "any":
            return _time_or_opaque(data, wt.name), pos
        return GoOpaque(wt.name, data, kind), pos
    if kind == "interface":
        return _iface(s, buf, pos, end)
    d = s.depth + 1
    if d > s.maxd:
        _deep(pos)
    s.depth = d
    if kind == "struct":
        v, pos = _struct(s, buf, pos, end, wt, spec)
    elif kind == "map":
        v, pos = _map(s, buf, pos, end, wt, spec)
    else:
        v, pos = _sequence(s, buf, pos, end, wt, spec)
    s.depth = d - 1
    return v, pos


def _struct(s, buf, pos, end, wt, spec):
    fields = wt.fields
    nfields = len(fields)
    if nfields > WIDE_STRUCT:
        charge(s, nfields, pos)
    typed = spec.kind == "struct"
    if typed:
        slots = struct_slots(wt, spec, pos, s.ctx.memo)
        vals = [default if dkind == CONST else _MISSING for _, _, dkind, default in spec.fields]
    else:
        vals = [_MISSING] * nfields
    fn = -1
    while pos < end:
        q = pos
        x, pos = read_uint(buf, pos, end)
        if not x:
            break
        fn += x
        if fn >= nfields:
            _range(q, fn)
        fid = fields[fn][1]
        if not typed:
            vals[fn], pos = value(s, buf, pos, end, fid, ANY)
        elif slots[fn] is None:
            _, pos = value(s, buf, pos, end, fid, ANY)
        else:
            j = slots[fn]
            vals[j], pos = value(s, buf, pos, end, fid, spec.fields[j][1])
        end = s.end
    types = s.ctx.types
    if not typed:
        own = frozenset((wt.id,))
        for i, (_, fid) in enumerate(fields):
            if vals[i] is _MISSING:
                fwt = types[fid]
                vals[i] = _zero(s, fid, own, pos) if fwt.kind in _CONTAINERS else _immutable_zero(fwt)
        return dict(zip((name for name, _ in fields), vals, strict=True)), pos
    for j, (_, _, _, default) in enumerate(spec.fields):
        if vals[j] is _MISSING:
            vals[j] = default()
    if spec.namedtuple:
        return tuple.__new__(spec.cls, vals), pos
    return spec.cls(**{f[0]: v for f, v in zip(spec.fields, vals, strict=True)}), pos


def _bound(s, wt, buf, pos, end):
    ctx = s.ctx
    switch = reaches_interface(ctx.types, wt.elem, ctx.iface) or (
        wt.key and reaches_interface(ctx.types, wt.key, ctx.iface)
    )
    return len(buf) - pos if switch else end - pos


def _sequence(s, buf, pos, end, wt, spec):
    q = pos
    n, pos = read_uint(buf, pos, end)
    if wt.kind == "array" and n != wt.length:
        _arrlen(q, n, wt.length)
    bound = _bound(s, wt, buf, pos, end)
    if n > bound:
        _count(q, n, bound)
    elem, espec = wt.elem, spec.elem if spec.kind == "list" else ANY
    out = []
    for _ in range(n):
        if pos >= end:
            _eof(pos)
        v, pos = value(s, buf, pos, end, elem, espec)
        end = s.end
        out.append(v)
    return out, pos


def _map(s, buf, pos, end, wt, spec):
    q = pos
    n, pos = read_uint(buf, pos, end)
    bound = _bound(s, wt, buf, pos, end)
    if n > bound:
        _count(q, n, bound)
    typed = spec.kind == "dict"
    kspec, vspec = (spec.key, spec.elem) if typed else (ANY, ANY)
    freeze = not typed and s.ctx.types[wt.key].kind in UNHASHABLE_KINDS
    out = {}
    for _ in range(n):
        k, pos = value(s, buf, pos, end, wt.key, kspec)
        end = s.end
        if freeze:
            k = _freeze(k)
        v, pos = value(s, buf, pos, end, wt.elem, vspec)
        end = s.end
        out[k] = v
    return out, pos
