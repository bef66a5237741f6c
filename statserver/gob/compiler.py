"""The second execution of a plan: Python source generated from it, compiled once.

Each struct, slice, array and map node of a plan (``plan.py``) becomes one function
``f(s, buf, pos, end) -> (value, pos)`` with scalar decoding inlined and a branch per field
number; functions call each other by name, so recursive types need nothing special. The
plan decides everything (targets, field slots, defaults, zero values, where ``end`` is
reloaded); the generated code does what ``interpreter.py`` does with it, step for step
(same checks, same errors), without the calls and lookups."""

import struct

from statserver.gob.interpreter import MISSING
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
    _ulong,
    _zero,
    charge,
)
from statserver.gob.values import GoOpaque

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


def compile_top(root):
    """The compiled decoder ``f(s, buf, pos, end)`` of a top-level (or interface) value
    planned by ``root``; the functions of its nodes are kept on them for later units."""
    return _Unit().build_top(root)


class _Unit:
    """One compilation: Python source for the plan nodes a top-level value needs."""

    def __init__(self):
        self.ns = dict(_HELPERS)
        self.names = {}
        self.todo = []
        self.made = []
        self.lines = []

    def const(self, value):
        name = f"k{len(self.ns)}"
        self.ns[name] = value
        return name

    def func(self, p):
        name = self.names.get(p)
        if name is None:
            name = self.names[p] = f"f{len(self.names)}_{p.tid}"
            if p.code is not None:
                self.ns[name] = p.code
            else:
                self.todo.append((p, name))
        return name

    def build_top(self, root):
        if root.op in ("struct", "typed_struct"):
            top = self.func(root)
        else:
            top = "top"
            L = self.lines
            L.append("def top(s, buf, pos, end):")
            L.append("    q = pos")
            _uint(L, "    ", "x")
            L.append("    if x: _single(q)")
            self.value(L, "    ", root, "v", reload=False)
            L.append("    return v, pos")
        while self.todo:
            p, name = self.todo.pop()
            self.made.append((p, name))
            self.gen(p, name)
        source = "\n".join(self.lines) + "\n"
        self.ns["__source__"] = source
        code = compile(source, "<gob decoder>", "exec")
        exec(code, self.ns)
        for p, name in self.made:
            p.code = self.ns[name]
        return self.ns[top]

    # Emit code that reads one value planned by p into var.
    def value(self, L, ind, p, var, reload=True):
        op = p.op
        if op == "bool":
            _uint(L, ind, "x")
            L.append(f"{ind}{var} = x != 0")
        elif op == "int":
            _uint(L, ind, "x")
            conv = "float" if p.as_float else ""
            L.append(f"{ind}{var} = {conv}(~(x >> 1) if x & 1 else x >> 1)")
        elif op == "uint":
            _uint(L, ind, "x")
            L.append(f"{ind}{var} = {'float(x)' if p.as_float else 'x'}")
        elif op == "float":
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
        elif op == "complex":
            _uint(L, ind, "x")
            _uint(L, ind, "y")
            L.append(f'{ind}{var} = complex(_ud(x.to_bytes(8, "big"))[0], _ud(y.to_bytes(8, "big"))[0])')
        elif op in ("string", "bytes", "time", "time_or_opaque", "opaque"):
            L.append(f"{ind}q = pos")
            _uint(L, ind, "n")
            L.append(f"{ind}if n > end - pos: _toolong(q, n, end - pos)")
            if op == "string":
                L.append(f"{ind}try: {var} = buf[pos:pos + n].decode()")
                L.append(f'{ind}except UnicodeDecodeError: {var} = buf[pos:pos + n].decode("utf-8", "surrogateescape")')
            elif op == "bytes":
                L.append(f"{ind}{var} = buf[pos:pos + n]")
            elif op == "time":
                L.append(f"{ind}{var} = _time(buf[pos:pos + n], q)")
            elif op == "time_or_opaque":
                L.append(f"{ind}{var} = _time_or_opaque(buf[pos:pos + n], {self.const(p.wt.name)})")
            else:
                L.append(f"{ind}{var} = _Opaque({self.const(p.wt.name)}, buf[pos:pos + n], {p.wt.kind!r})")
            L.append(f"{ind}pos += n")
        elif op == "interface":
            L.append(f"{ind}{var}, pos = _iface(None, s, buf, pos, end)")
        else:
            L.append(f"{ind}{var}, pos = {self.func(p)}(s, buf, pos, end)")
        if reload and p.switches:
            L.append(f"{ind}end = s.end")

    def gen(self, p, name):
        L = self.lines
        L.append(f"def {name}(s, buf, pos, end):")
        L.append("    d = s.depth + 1")
        L.append("    if d > s.maxd: _deep(pos)")
        L.append("    s.depth = d")
        if p.op in ("slice", "array"):
            self.gen_sequence(L, p)
        elif p.op == "map":
            self.gen_map(L, p)
        else:
            self.gen_struct(L, p)

    def gen_sequence(self, L, p):
        L.append("    q = pos")
        _uint(L, "    ", "n")
        if p.length is not None:
            L.append(f"    if n != {p.length}: _arrlen(q, n, {p.length})")
        bound = "len(buf) - pos" if p.whole_stream else "end - pos"
        L.append(f"    if n > {bound}: _count(q, n, {bound})")
        L.append("    out = []")
        L.append("    app = out.append")
        L.append("    for _ in range(n):")
        L.append("        if pos >= end: _eof(pos)")
        self.value(L, "        ", p.elem, "v")
        L.append("        app(v)")
        L.append("    s.depth = d - 1")
        L.append("    return out, pos")

    def gen_map(self, L, p):
        L.append("    q = pos")
        _uint(L, "    ", "n")
        bound = "len(buf) - pos" if p.whole_stream else "end - pos"
        L.append(f"    if n > {bound}: _count(q, n, {bound})")
        L.append("    out = {}")
        L.append("    for _ in range(n):")
        self.value(L, "        ", p.key, "k")
        if p.freeze:
            L.append("        k = _freeze(k)")
        self.value(L, "        ", p.elem, "v")
        L.append("        out[k] = v")
        L.append("    s.depth = d - 1")
        L.append("    return out, pos")

    def gen_struct(self, L, p):
        typed = p.op == "typed_struct"
        var = "t" if typed else "v"
        after = []
        for j, initial in enumerate(p.initial):
            L.append(f"    {var}{j} = {'_M' if initial is MISSING else self.const(initial)}")
        if typed:
            for j, factory in p.fill:
                after.append(f"    if t{j} is _M: t{j} = {self.const(factory)}()")
            args = ", ".join(f"t{j}" for j in range(len(p.names)))
            cls = self.const(p.cls)
            if p.namedtuple:
                result = f"_tn({cls}, ({args}{',' if len(p.names) == 1 else ''}))"
            else:
                kw = ", ".join(f"{fname}=t{j}" for j, fname in enumerate(p.names))
                result = f"{cls}({kw})"
        else:
            own = self.const(p.own)
            for i, fid in p.fill:
                after.append(f"    if v{i} is _M: v{i} = _zero(s, {fid}, {own}, pos)")
            result = "{" + ", ".join(f"{fname!r}: v{i}" for i, fname in enumerate(p.names)) + "}"
        slots = [("_" if slot is None else f"{var}{slot}", c) for c, slot in p.fields]
        if p.wide:
            L.append(f"    _charge(s, {len(p.fields)}, pos)")
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
                var, c = slots[i]
                L.append(f"{ind}{'if' if i == lo else 'elif'} fn == {i}:")
                self.value(L, ind + "    ", c, var)
            L.append(f"{ind}else: _range(q, fn)")
            return
        mid = (lo + hi) // 2
        L.append(f"{ind}if fn < {mid}:")
        self._dispatch(L, ind + "    ", slots, lo, mid)
        L.append(f"{ind}else:")
        self._dispatch(L, ind + "    ", slots, mid, hi)
