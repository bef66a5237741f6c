"""The fast path: Python source generated per value type (and target), compiled once.

Each struct, slice, array and map type becomes one function ``f(s, buf, pos, end) ->
(value, pos)`` with scalar decoding inlined and a branch per field number; functions call
each other by name, so recursive types need nothing special. The generated code does what
``interpreter.py`` does, step for step (same checks, same errors)."""

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
    _ulong,
    _zero,
    charge,
    resolve,
    struct_slots,
)
from statserver.gob.targets import ANY, CONST
from statserver.gob.values import GoOpaque
from statserver.gob.wiretypes import ENCODER_KINDS, reaches_interface

MISSING = object()
# What generated code calls, by the names it uses.
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
    "_charge": charge,
    "_iface": _iface,
    "_M": MISSING,
    "_PAD": (b"", b"") + tuple(bytes(8 - n) for n in range(1, 9)),
    "_tn": tuple.__new__,
}


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
        return resolve(spec, wt, self.pos)

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
        if not typed and self.ctx.types[wt.key].kind in UNHASHABLE_KINDS:
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
                    after.append(f"    if v{i} is _M: v{i} = _zero(s, {fid}, {self.const(frozenset((wt.id,)))}, pos)")
                else:
                    L.append(f"    v{i} = {self.const(_immutable_zero(fwt))}")
                slots.append((f"v{i}", fid, ANY))
            result = "{" + ", ".join(f"{fname!r}: v{i}" for i, (fname, _) in enumerate(fields)) + "}"
        else:
            for j, (_, _, dkind, default) in enumerate(spec.fields):
                if dkind == CONST:
                    L.append(f"    t{j} = {self.const(default)}")
                else:
                    L.append(f"    t{j} = _M")
                    after.append(f"    if t{j} is _M: t{j} = {self.const(default)}()")
            slots = []
            for j, (_, fid) in zip(struct_slots(wt, spec, self.pos), fields, strict=True):
                if j is None:
                    slots.append(("_", fid, ANY))
                else:
                    slots.append((f"t{j}", fid, spec.fields[j][1]))
            args = ", ".join(f"t{j}" for j in range(len(spec.fields)))
            cls = self.const(spec.cls)
            if spec.namedtuple:
                result = f"_tn({cls}, ({args}{',' if len(spec.fields) == 1 else ''}))"
            else:
                kw = ", ".join(f"{f[0]}=t{j}" for j, f in enumerate(spec.fields))
                result = f"{cls}({kw})"
        if len(fields) > WIDE_STRUCT:
            L.append(f"    _charge(s, {len(fields)}, pos)")
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
