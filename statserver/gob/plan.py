"""The decoding plan: what a value of one wire type becomes in one target, worked out once.

``build(ctx, tid, target, pos)`` turns a wire type id and a target (a ``targets.Spec``)
into a graph of ``Plan`` nodes, one per (type id, target) the value can reach, cached in the
context. A node holds everything decoding needs: the resolved target (a union's member),
the operation that reads the value, how each wire field of a struct is matched to a target
field (or skipped), the defaults of target fields the wire leaves out, the zero values of
generic struct fields, whether a value can bring new messages with it (an interface inside:
``end`` must then be reloaded after it, and counts are bounded by the stream instead of the
message), and the child plans. Building it checks, as Go does before decoding a value, that
every type the value's type reaches is defined and sound, and raises every error a target
can cause (a wire type that fits no annotation, a struct none of whose fields match): all
before a value byte is read.

Two executions read the same plan and nothing else: ``interpreter.py`` walks the nodes,
``compiler.py`` writes Python source from them.
"""

from statserver.gob import interpreter
from statserver.gob.errors import GobError
from statserver.gob.runtime import (
    UNHASHABLE_KINDS,
    WIDE_STRUCT,
    _immutable_zero,
    resolve,
    struct_slots,
)
from statserver.gob.targets import ANY, CONST
from statserver.gob.wiretypes import ENCODER_KINDS, SCALAR_KINDS, check_type

MISSING = interpreter.MISSING  # a struct slot the wire has not filled (yet)
_CONTAINER_KINDS = ("slice", "map", "array", "struct")


class Plan:
    """How to decode a value of wire type ``wt`` into target ``target``.

    ``op`` is the operation: ``bool int uint float complex string bytes time time_or_opaque
    opaque interface`` for values read in place, ``slice array map`` for sequences,
    ``struct`` (a dict of every wire field) or ``typed_struct`` (the target class).
    """

    __slots__ = (
        "tid", "wt", "target", "op",
        "as_float",  # int/uint: the target wants a float
        "elem", "key", "length", "freeze", "whole_stream",  # sequences and maps
        "fields", "names", "initial", "fill", "own", "wide", "cls", "namedtuple",  # structs
        "switches", "run", "code", "size",
    )

    def __init__(self, tid, wt, target):
        self.tid = tid
        self.wt = wt
        self.target = target
        self.op = None
        self.as_float = False
        self.elem = self.key = self.length = None
        self.freeze = self.whole_stream = False
        # Structs: ``fields`` has (child plan, slot) per wire field, the slot being the
        # index of the value it fills (None: decoded and dropped); ``initial`` holds each
        # slot's value before any field is read (MISSING: filled after, from ``fill``:
        # (slot, type id) whose zero value ``runtime._zero`` builds, or (slot, factory)).
        self.fields = self.names = self.initial = self.fill = ()
        self.own = None  # generic struct: frozenset of its own id, for the zero values
        self.wide = False  # more than WIDE_STRUCT fields: charged to the budget per value
        self.cls = None
        self.namedtuple = False
        self.switches = False  # a value may span messages: reload ``end`` after it
        self.run = None  # the interpreter's function for ``op``
        self.code = None  # the compiled function, once compiled (sequences, maps, structs)
        self.size = None  # root only: nodes plus struct fields reachable (code size)

    def children(self):
        if self.fields:
            return [c for c, _ in self.fields]
        return [c for c in (self.key, self.elem) if c is not None]

    def __repr__(self):
        return f"<plan {self.op} {self.tid} into {self.target.name}>"


# Plans of the predefined scalar types (ids 1-8) by resolved target, which is ANY or a
# scalar target: the same in every context, so built once.
_SCALAR_PLANS = {}


def build(ctx, tid, target, pos):
    """The plan of a value of type ``tid`` into ``target``. Every type it reaches must be
    defined and sound (Go's check before a value is decoded); new nodes are published in
    ``ctx.plans`` only once all are complete."""
    plans = ctx.plans
    root = plans.get((tid, target))
    if root is not None:
        return root
    types = ctx.types
    new = {}
    todo = []
    switching = []  # nodes met that switch messages (interfaces, and nodes built before)

    def node(t, spec):
        key = (t, spec)
        p = plans.get(key) or new.get(key)
        if p is None:
            wt = types.get(t)
            if wt is None:
                raise GobError(f"value needs type id {t}, which the stream never defined", pos)
            if t in SCALAR_KINDS:
                p = new[key] = _scalar_plan(t, wt, resolve(spec, wt, pos))
            else:
                check_type(wt, pos)
                p = new[key] = Plan(t, wt, resolve(spec, wt, pos))
                todo.append(p)
        if p.switches:
            switching.append(p)
        return p

    root = node(tid, target)
    while todo:
        _fill(todo.pop(), node, types, pos)
    if switching:
        _mark_switches(new.values(), switching)
    plans.update(new)
    return root


def _scalar_plan(tid, wt, target):
    p = _SCALAR_PLANS.get((tid, target))
    if p is None:
        p = Plan(tid, wt, target)
        _fill(p, None, None, None)
        p.switches = p.op == "interface"
        _SCALAR_PLANS[tid, target] = p
    return p


_READ_IN_PLACE = ("bool", "float", "complex", "string", "bytes", "interface")


def _fill(p, node, types, pos):
    wt, target = p.wt, p.target
    kind, tk = wt.kind, target.kind
    if kind in _READ_IN_PLACE:
        p.op = kind
    elif kind in ("int", "uint"):
        p.op = kind
        p.as_float = tk == "float"
    elif kind in ENCODER_KINDS:
        if tk == "time":
            p.op = "time"
        elif kind == "gob" and wt.name == "Time" and tk == "any":
            p.op = "time_or_opaque"
        else:
            p.op = "opaque"
    elif kind in ("slice", "array"):
        p.op = kind
        p.elem = node(wt.elem, target.elem if tk == "list" else ANY)
        if kind == "array":
            p.length = wt.length
    elif kind == "map":
        p.op = "map"
        typed = tk == "dict"
        p.key = node(wt.key, target.key if typed else ANY)
        p.elem = node(wt.elem, target.elem if typed else ANY)
        p.freeze = not typed and types[wt.key].kind in UNHASHABLE_KINDS
    else:  # struct (check_type let no other kind through)
        p.wide = len(wt.fields) > WIDE_STRUCT
        if tk == "struct":
            p.op = "typed_struct"
            slots = struct_slots(wt, target, pos)
            tfields = target.fields
            p.fields = tuple(
                [(node(fid, ANY if j is None else tfields[j][1]), j) for j, (_, fid) in zip(slots, wt.fields, strict=True)]
            )
            p.names = tuple([f[0] for f in tfields])
            p.initial = tuple([d if dkind == CONST else MISSING for _, _, dkind, d in tfields])
            p.fill = tuple([(j, f[3]) for j, f in enumerate(tfields) if f[2] != CONST])
            p.cls = target.cls
            p.namedtuple = target.namedtuple
        else:
            p.op = "struct"
            p.fields = tuple([(node(fid, ANY), i) for i, (_, fid) in enumerate(wt.fields)])
            p.names = tuple([name for name, _ in wt.fields])
            ftypes = [c.wt for c, _ in p.fields]
            p.initial = tuple([MISSING if f.kind in _CONTAINER_KINDS else _immutable_zero(f) for f in ftypes])
            p.fill = tuple([(i, f.id) for i, f in enumerate(ftypes) if f.kind in _CONTAINER_KINDS])
            p.own = frozenset((p.tid,))
    p.run = interpreter.STEPS[p.op]


def _mark_switches(new, switching):
    """Set ``switches`` on the new nodes that reach one of ``switching`` (nodes built
    before are complete and never point at new ones), and ``whole_stream`` on the
    sequences and maps among them whose elements switch."""
    parents = {}
    for p in new:
        for c in p.children():
            parents.setdefault(c, []).append(p)
    todo = []
    for p in switching:
        todo.extend(parents.get(p, ()))
    while todo:
        p = todo.pop()
        if not p.switches:
            p.switches = True
            todo.extend(parents.get(p, ()))
    for p in new:
        if p.op in ("slice", "array", "map"):
            p.whole_stream = p.elem.switches or (p.key is not None and p.key.switches)


def size(root):
    """Plan nodes plus struct fields reachable from ``root``: how much code it compiles to."""
    if root.size is None:
        seen, todo, n = {root}, [root], 0
        while todo:
            p = todo.pop()
            n += 1 + len(p.fields)
            for c in p.children():
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
        root.size = n
    return root.size
