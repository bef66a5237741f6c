"""The first execution of a plan: walking its nodes, with nothing compiled.

A value type's first use is interpreted (a one-off or hostile frame never pays for code
generation); from its second use the code ``compiler.py`` generates from the same plan
takes over. Each step here is one function per plan operation, called as
``p.run(p, s, buf, pos, end) -> (value, pos)``; a sequence, map or struct step calls its
children's steps, so a level of nesting costs one Python frame, as in the compiled code.
"""

import struct
from functools import partial

from statserver.gob.runtime import (
    _arrlen,
    _count,
    _deep,
    _eof,
    _freeze,
    _iface,
    _range,
    _single,
    _time,
    _time_or_opaque,
    _toolong,
    _zero,
    charge,
)
from statserver.gob.values import GoOpaque
from statserver.gob.wiretypes import read_uint

MISSING = object()
_float_from_be = struct.Struct("<d").unpack  # gob sends a float's bytes reversed, as a uint


def top(p):
    """An interpreting decoder ``f(s, buf, pos, end)`` of a top-level (or interface) value
    planned by ``p``; a value that is not a struct comes after a zero field delta."""
    run = p.run
    if p.op in ("struct", "typed_struct"):
        return partial(run, p)

    def decode_single(s, buf, pos, end):
        q = pos
        x, pos = read_uint(buf, pos, end)
        if x:
            _single(q)
        return run(p, s, buf, pos, end)

    return decode_single


def _bool(p, s, buf, pos, end):
    x, pos = read_uint(buf, pos, end)
    return x != 0, pos


def _int(p, s, buf, pos, end):
    x, pos = read_uint(buf, pos, end)
    v = ~(x >> 1) if x & 1 else x >> 1
    return (float(v) if p.as_float else v), pos


def _uint(p, s, buf, pos, end):
    x, pos = read_uint(buf, pos, end)
    return (float(x) if p.as_float else x), pos


def _float(p, s, buf, pos, end):
    x, pos = read_uint(buf, pos, end)
    return _float_from_be(x.to_bytes(8, "big"))[0], pos


def _complex(p, s, buf, pos, end):
    x, pos = read_uint(buf, pos, end)
    y, pos = read_uint(buf, pos, end)
    return complex(_float_from_be(x.to_bytes(8, "big"))[0], _float_from_be(y.to_bytes(8, "big"))[0]), pos


def _counted(buf, pos, end):
    """The bytes of a length-prefixed value: (their start, the bytes, the next position)."""
    q = pos
    n, pos = read_uint(buf, pos, end)
    if n > end - pos:
        _toolong(q, n, end - pos)
    return q, buf[pos : pos + n], pos + n


def _string(p, s, buf, pos, end):
    _, data, pos = _counted(buf, pos, end)
    return str(data, "utf-8", "surrogateescape"), pos


def _bytes(p, s, buf, pos, end):
    _, data, pos = _counted(buf, pos, end)
    return data, pos


def _time_step(p, s, buf, pos, end):
    q, data, pos = _counted(buf, pos, end)
    return _time(data, q), pos


def _time_or_opaque_step(p, s, buf, pos, end):
    _, data, pos = _counted(buf, pos, end)
    return _time_or_opaque(data, p.wt.name), pos


def _opaque(p, s, buf, pos, end):
    _, data, pos = _counted(buf, pos, end)
    return GoOpaque(p.wt.name, data, p.wt.kind), pos


def _sequence(p, s, buf, pos, end):
    d = s.depth + 1
    if d > s.maxd:
        _deep(pos)
    s.depth = d
    q = pos
    n, pos = read_uint(buf, pos, end)
    if p.length is not None and n != p.length:
        _arrlen(q, n, p.length)
    bound = (len(buf) if p.whole_stream else end) - pos
    if n > bound:
        _count(q, n, bound)
    e = p.elem
    run, reload = e.run, e.switches
    out = []
    for _ in range(n):
        if pos >= end:
            _eof(pos)
        v, pos = run(e, s, buf, pos, end)
        if reload:
            end = s.end
        out.append(v)
    s.depth = d - 1
    return out, pos


def _map(p, s, buf, pos, end):
    d = s.depth + 1
    if d > s.maxd:
        _deep(pos)
    s.depth = d
    q = pos
    n, pos = read_uint(buf, pos, end)
    bound = (len(buf) if p.whole_stream else end) - pos
    if n > bound:
        _count(q, n, bound)
    k, e = p.key, p.elem
    freeze = p.freeze
    out = {}
    for _ in range(n):
        key, pos = k.run(k, s, buf, pos, end)
        if k.switches:
            end = s.end
        if freeze:
            key = _freeze(key)
        v, pos = e.run(e, s, buf, pos, end)
        if e.switches:
            end = s.end
        out[key] = v
    s.depth = d - 1
    return out, pos


def _struct(p, s, buf, pos, end):
    """A struct: a dict of every wire field (absent ones zero) or, typed, the target class
    (absent fields at their defaults)."""
    d = s.depth + 1
    if d > s.maxd:
        _deep(pos)
    s.depth = d
    fields = p.fields
    n = len(fields)
    if p.wide:
        charge(s, n, pos)
    vals = list(p.initial)
    fn = -1
    while pos < end:
        q = pos
        x, pos = read_uint(buf, pos, end)
        if not x:
            break
        fn += x
        if fn >= n:
            _range(q, fn)
        c, slot = fields[fn]
        v, pos = c.run(c, s, buf, pos, end)
        if slot is not None:
            vals[slot] = v
        if c.switches:
            end = s.end
    cls = p.cls
    if cls is None:
        for i, fid in p.fill:
            if vals[i] is MISSING:
                vals[i] = _zero(s, fid, p.own, pos)
        s.depth = d - 1
        return dict(zip(p.names, vals, strict=True)), pos
    for j, factory in p.fill:
        if vals[j] is MISSING:
            vals[j] = factory()
    s.depth = d - 1
    if p.namedtuple:
        return tuple.__new__(cls, vals), pos
    return cls(**dict(zip(p.names, vals, strict=True))), pos


STEPS = {
    "bool": _bool,
    "int": _int,
    "uint": _uint,
    "float": _float,
    "complex": _complex,
    "string": _string,
    "bytes": _bytes,
    "time": _time_step,
    "time_or_opaque": _time_or_opaque_step,
    "opaque": _opaque,
    "interface": _iface,
    "slice": _sequence,
    "array": _sequence,
    "map": _map,
    "struct": _struct,
    "typed_struct": _struct,
}
