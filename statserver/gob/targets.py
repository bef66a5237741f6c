"""Typed decoding targets: Python declarations of what a gob value should become.

A struct target is a ``dataclass`` or a ``typing.NamedTuple`` whose field names are the Go
field names; each field's annotation says what its value becomes:

| annotation | accepts from the wire |
| --- | --- |
| ``bool`` | bool |
| ``int`` | int, uint |
| ``float`` | float, int, uint |
| ``complex`` | complex |
| ``str`` / ``bytes`` | string / ``[]byte`` |
| ``GoTime`` | a GobEncoder or BinaryMarshaler holding a Go time, whatever its name |
| ``GoOpaque`` | any GobEncoder, BinaryMarshaler or TextMarshaler |
| ``list[X]`` | slice or array of X |
| ``dict[K, V]`` | map |
| a dataclass / NamedTuple | struct |
| ``X | None`` (``Optional[X]``) | as X (Go pointers are flattened on the wire) |
| ``X | Y`` | whichever of X, Y fits the wire type (first wins) |
| ``typing.Any``, ``object``, ``GoInterface`` | anything, decoded generically |
"""

import dataclasses
import types
import typing

from statserver.gob.errors import GobError
from statserver.gob.values import GoInterface, GoOpaque, GoTime


class Spec:
    """A normalised target: ``kind`` is one of ``any bool int float complex str bytes
    time opaque list dict struct union``; identity-hashable so compiled decoders can be
    cached per target."""

    __slots__ = ("kind", "elem", "key", "members", "cls", "fields", "namedtuple", "name")

    def __init__(self, kind, name=""):
        self.kind = kind
        self.name = name or kind
        self.elem = self.key = self.cls = None
        self.members = ()
        self.fields = ()  # struct: tuple of (go name, Spec, default kind, default)
        self.namedtuple = False

    def __repr__(self):
        return f"<target {self.name}>"


ANY = Spec("any")
_SCALARS = {
    bool: Spec("bool"),
    int: Spec("int"),
    float: Spec("float"),
    complex: Spec("complex"),
    str: Spec("str"),
    bytes: Spec("bytes"),
    GoTime: Spec("time", "GoTime"),
    GoOpaque: Spec("opaque", "GoOpaque"),
}
_cache = {}

# Default kinds of struct target fields.
CONST, FACTORY = "const", "factory"


def spec_for(target):
    """The Spec for a target annotation (None means generic decoding)."""
    if target is None:
        return ANY
    try:
        return _cache[target]
    except (KeyError, TypeError):
        pass
    spec = _build(target, {})  # an unhashable target raises TypeError in there
    _cache[target] = spec
    return spec


def _is_struct_class(t):
    return isinstance(t, type) and (
        dataclasses.is_dataclass(t) or (issubclass(t, tuple) and hasattr(t, "_fields"))
    )


def _build(t, building):
    if t is None or t is typing.Any or t is object or t is GoInterface:
        return ANY
    if t in _SCALARS:
        return _SCALARS[t]
    if t in building:
        return building[t]
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        members = [_build(a, building) for a in args if a is not type(None)]
        if len(members) == 1:
            return members[0]
        spec = Spec("union", " | ".join(m.name for m in members))
        spec.members = tuple(members)
        return spec
    if origin in (list, typing.List) or t is list:  # noqa: UP006
        spec = Spec("list", "list")
        spec.elem = _build(args[0], building) if args else ANY
        return spec
    if origin in (dict, typing.Dict) or t is dict:  # noqa: UP006
        spec = Spec("dict", "dict")
        spec.key = _build(args[0], building) if args else ANY
        spec.elem = _build(args[1], building) if len(args) > 1 else ANY
        return spec
    if _is_struct_class(t):
        return _build_struct(t, building)
    raise TypeError(f"unsupported gob decoding target: {t!r}")


def _build_struct(cls, building):
    spec = Spec("struct", cls.__name__)
    spec.cls = cls
    building[cls] = spec
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = dict(getattr(cls, "__annotations__", {}))
    fields = []
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            fspec = _build(hints.get(f.name, typing.Any), building)
            if f.default is not dataclasses.MISSING:
                fields.append((f.name, fspec, CONST, f.default))
            elif f.default_factory is not dataclasses.MISSING:
                fields.append((f.name, fspec, FACTORY, f.default_factory))
            else:
                fields.append((f.name, fspec, *_zero_default(fspec)))
    else:
        spec.namedtuple = True
        defaults = getattr(cls, "_field_defaults", {})
        for name in cls._fields:
            fspec = _build(hints.get(name, typing.Any), building)
            if name in defaults:
                fields.append((name, fspec, CONST, defaults[name]))
            else:
                fields.append((name, fspec, *_zero_default(fspec)))
    spec.fields = tuple(fields)
    return spec


_ZEROS = {"bool": False, "int": 0, "float": 0.0, "complex": 0j, "str": "", "bytes": b""}


def _zero_default(spec):
    """Default for a target field declared without one: the zero of its annotation
    (None for structs, interfaces and unions)."""
    if spec.kind in _ZEROS:
        return CONST, _ZEROS[spec.kind]
    if spec.kind == "time":
        return CONST, GoTime()
    if spec.kind == "list":
        return FACTORY, list
    if spec.kind == "dict":
        return FACTORY, dict
    return CONST, None


def describe_mismatch(spec, wt, pos):
    return GobError(f"cannot decode wire type {wt.name or wt.kind!r} ({wt.kind}) into {spec.name}", pos)
