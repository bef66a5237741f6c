"""Go types declared in Python, for the gob encoder.

Gob sends a value together with a description of its Go type, so encoding needs the
type. Declare it with these classes and constants::

    from statserver.gob.gotypes import FLOAT64, STRING, TIME, Struct

    NamespacedName = Struct("NamespacedName", [("Namespace", STRING), ("Name", STRING)])
    Node = Struct("Node")                       # recursive: declare, then define
    Node.define([("Value", INT), ("Next", Pointer(Node)), ("Kids", Slice(Node))])

Structs are named and compared by identity (two declarations are two Go types, as in Go);
slices, arrays, maps and pointers are compared by structure, like Go's unnamed types, unless
given a ``name`` (Go's ``type Tags []string``). ``pkg`` is the Go package name; it appears
in the names gob sends for unnamed container types (``[]main.Inner``).
"""

from __future__ import annotations

from dataclasses import dataclass

# Wire ids of gob's predefined types.
BOOL_ID, INT_ID, UINT_ID, FLOAT_ID, BYTES_ID, STRING_ID, COMPLEX_ID, INTERFACE_ID = range(1, 9)


@dataclass(frozen=True)
class Scalar:
    """A Go basic type: its Go name and the predefined gob type id it is sent as."""

    name: str
    wire_id: int
    bits: int = 64  # width of int/uint/float kinds; values are range-checked against it

    def go_string(self):
        return self.name


BOOL = Scalar("bool", BOOL_ID, 1)
INT = Scalar("int", INT_ID)
INT8 = Scalar("int8", INT_ID, 8)
INT16 = Scalar("int16", INT_ID, 16)
INT32 = Scalar("int32", INT_ID, 32)
INT64 = Scalar("int64", INT_ID)
UINT = Scalar("uint", UINT_ID)
UINT8 = Scalar("uint8", UINT_ID, 8)
UINT16 = Scalar("uint16", UINT_ID, 16)
UINT32 = Scalar("uint32", UINT_ID, 32)
UINT64 = Scalar("uint64", UINT_ID)
UINTPTR = Scalar("uintptr", UINT_ID)
FLOAT32 = Scalar("float32", FLOAT_ID, 32)
FLOAT64 = Scalar("float64", FLOAT_ID)
COMPLEX64 = Scalar("complex64", COMPLEX_ID, 32)
COMPLEX128 = Scalar("complex128", COMPLEX_ID)
STRING = Scalar("string", STRING_ID)
BYTES = Scalar("[]uint8", BYTES_ID)  # Go's []byte: a predefined gob type, never described


@dataclass(frozen=True)
class Interface:
    """A Go interface type (``interface{}`` by default). Its values are ``GoInterface``
    or None; the concrete type comes from the encoder's registry of names."""

    name: str = ""
    pkg: str = "main"

    def go_string(self):
        return f"{self.pkg}.{self.name}" if self.name else "interface {}"


INTERFACE = Interface()


@dataclass(frozen=True)
class Slice:
    """``[]elem``. ``Slice(UINT8)`` is the same as ``BYTES``."""

    elem: object
    name: str = ""
    pkg: str = "main"

    def go_string(self):
        return f"{self.pkg}.{self.name}" if self.name else "[]" + self.elem.go_string()


@dataclass(frozen=True)
class Array:
    """``[length]elem``; a value must have exactly ``length`` elements."""

    elem: object
    length: int
    name: str = ""
    pkg: str = "main"

    def go_string(self):
        return f"{self.pkg}.{self.name}" if self.name else f"[{self.length}]{self.elem.go_string()}"


@dataclass(frozen=True)
class Map:
    """``map[key]elem``. Values: a mapping or an iterable of (key, value) pairs; None is
    Go's nil map (omitted from a struct), while an empty map is sent."""

    key: object
    elem: object
    name: str = ""
    pkg: str = "main"

    def go_string(self):
        if self.name:
            return f"{self.pkg}.{self.name}"
        return f"map[{self.key.go_string()}]{self.elem.go_string()}"


@dataclass(frozen=True)
class Pointer:
    """``*elem``: gob sends the element; None is the nil pointer (omitted from a struct)."""

    elem: object
    name = ""

    def go_string(self):
        return "*" + self.elem.go_string()


@dataclass(frozen=True)
class Opaque:
    """A type with its own marshalling: ``kind`` ``"gob"`` (GobEncoder), ``"binary"``
    (BinaryMarshaler) or ``"text"`` (TextMarshaler). Values are ``GoOpaque`` or bytes;
    the encoder sends the bytes as they are. ``TIME`` is Go's ``time.Time``."""

    name: str
    kind: str = "gob"
    pkg: str = "main"

    def go_string(self):
        return f"{self.pkg}.{self.name}" if self.name else "struct {}"


TIME = Opaque("Time", "gob", "time")


class Struct:
    """A Go struct type with ordered, named fields.

    ``fields`` is a sequence of ``(name, type)``; leave it out and call ``define`` later
    to declare a recursive type. Compared by identity, like Go's named types; a ``name``
    of ``""`` declares an anonymous ``struct { ... }``.
    """

    __slots__ = ("name", "pkg", "_fields")

    def __init__(self, name, fields=None, pkg="main"):
        self.name = name
        self.pkg = pkg
        self._fields = None
        if fields is not None:
            self.define(fields)

    def define(self, fields):
        """Set the fields (once); returns the struct."""
        if self._fields is not None:
            raise ValueError(f"struct {self.name} is already defined")
        self._fields = tuple((str(n), t) for n, t in fields)
        return self

    @property
    def fields(self):
        if self._fields is None:
            raise ValueError(f"struct {self.name} is declared but not defined")
        return self._fields

    def go_string(self):
        if self.name:
            return f"{self.pkg}.{self.name}"
        if not self.fields:
            return "struct {}"
        return "struct { " + "; ".join(f"{n} {t.go_string()}" for n, t in self.fields) + " }"

    def __repr__(self):
        return f"Struct({self.name!r})"


def base(t):
    """The type under any pointers (Go's ``userTypeInfo.base``)."""
    while isinstance(t, Pointer):
        t = t.elem
    return t


def go_name(t):
    """What Go's ``reflect.Type.Name()`` gives: the declared name, "" for unnamed types."""
    if isinstance(t, Scalar):
        return "" if t is BYTES or t.name == "[]uint8" else t.name
    return getattr(t, "name", "")


def zero_value(t):
    """The Python value of Go's zero value of ``t`` (None for pointers, interfaces, nil maps)."""
    if isinstance(t, Scalar):
        if t.wire_id == BOOL_ID:
            return False
        if t.wire_id in (INT_ID, UINT_ID):
            return 0
        if t.wire_id == FLOAT_ID:
            return 0.0
        if t.wire_id == COMPLEX_ID:
            return 0j
        return "" if t.wire_id == STRING_ID else b""
    if isinstance(t, Array):
        return [zero_value(t.elem) for _ in range(t.length)]
    if isinstance(t, Slice):
        return b"" if base(t.elem) == UINT8 else []
    if isinstance(t, Struct):
        return {name: zero_value(ft) for name, ft in t.fields}
    return None


__all__ = [
    "Array", "BOOL", "BYTES", "COMPLEX128", "COMPLEX64", "FLOAT32", "FLOAT64", "INT",
    "INT16", "INT32", "INT64", "INT8", "INTERFACE", "Interface", "Map", "Opaque", "Pointer",
    "STRING", "Scalar", "Slice", "Struct", "TIME", "UINT", "UINT16", "UINT32", "UINT64",
    "UINT8", "UINTPTR", "base", "go_name", "zero_value",
]
