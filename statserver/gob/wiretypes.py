"""The decoder's model of gob wire types: the predefined ones and the ``wireType``
definitions a stream sends (``src/encoding/gob/type.go``)."""

from statserver.gob.errors import GobError

BOOL, INT, UINT, FLOAT, BYTES, STRING, COMPLEX, INTERFACE = range(1, 9)
FIRST_USER_ID = 64
SCALAR_KINDS = {
    BOOL: "bool",
    INT: "int",
    UINT: "uint",
    FLOAT: "float",
    BYTES: "bytes",
    STRING: "string",
    COMPLEX: "complex",
    INTERFACE: "interface",
}
# Kinds a wireType can define, by the index of its field (ArrayT, SliceT, ...).
DEFINED_KINDS = ("array", "slice", "struct", "map", "gob", "binary", "text")
ENCODER_KINDS = frozenset(("gob", "binary", "text"))


class WireType:
    """One gob type: ``kind`` is a scalar kind, ``"array"``, ``"slice"``, ``"struct"``,
    ``"map"``, an encoder kind (``"gob"``, ``"binary"``, ``"text"``) or None when a
    definition named no kind (or several kinds, ``"conflict"``); ``fields`` is a tuple of
    ``(name, type id)`` for structs."""

    __slots__ = ("id", "kind", "name", "elem", "key", "length", "fields")

    def __init__(self, id, kind, name="", elem=0, key=0, length=0, fields=()):
        self.id = id
        self.kind = kind
        self.name = name
        self.elem = elem
        self.key = key
        self.length = length
        self.fields = fields

    def __repr__(self):
        return f"WireType({self.id}, {self.kind!r}, {self.name!r})"


def _struct(id, name, fields):
    return WireType(id, "struct", name, fields=tuple(fields))


# Predefined types: the scalars, and gob's own bootstrap types (ids 16-24), which a
# stream may also send as values.
PREDEFINED = {id: WireType(id, kind, kind) for id, kind in SCALAR_KINDS.items()}
PREDEFINED.update(
    {
        16: _struct(
            16,
            "wireType",
            [
                ("ArrayT", 17),
                ("SliceT", 19),
                ("StructT", 20),
                ("MapT", 23),
                ("GobEncoderT", 24),
                ("BinaryMarshalerT", 24),
                ("TextMarshalerT", 24),
            ],
        ),
        17: _struct(17, "arrayType", [("CommonType", 18), ("Elem", INT), ("Len", INT)]),
        18: _struct(18, "CommonType", [("Name", STRING), ("Id", INT)]),
        19: _struct(19, "sliceType", [("CommonType", 18), ("Elem", INT)]),
        20: _struct(20, "structType", [("CommonType", 18), ("Field", 22)]),
        21: _struct(21, "fieldType", [("Name", STRING), ("Id", INT)]),
        22: WireType(22, "slice", "[]fieldType", elem=21),
        23: _struct(23, "mapType", [("CommonType", 18), ("Key", INT), ("Elem", INT)]),
        24: _struct(24, "gobEncoderType", [("CommonType", 18)]),
    }
)

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def read_uint(buf, pos, end):
    """Decode a gob unsigned integer at ``pos``; return it and the next position."""
    if pos >= end:
        raise GobError("unexpected end of message", pos)
    b = buf[pos]
    if b < 128:
        return b, pos + 1
    n = 256 - b
    if n > 8:
        raise GobError(f"invalid unsigned integer length byte 0x{b:02x}", pos)
    start = pos + 1
    if start + n > end:
        raise GobError(f"unsigned integer of {n} bytes runs past the end of its message", pos)
    return int.from_bytes(buf[start : start + n], "big"), start + n


def read_int(buf, pos, end):
    x, pos = read_uint(buf, pos, end)
    return (~(x >> 1) if x & 1 else x >> 1), pos


def _read_type_id(buf, pos, end):
    start = pos
    v, pos = read_int(buf, pos, end)
    if not _INT32_MIN <= v <= _INT32_MAX:
        raise GobError(f"type id {v} out of range", start)
    return v, pos


def _read_string(buf, pos, end):
    start = pos
    n, pos = read_uint(buf, pos, end)
    if n > end - pos:
        raise GobError(f"string length {n} exceeds the {end - pos} bytes left", start)
    return str(buf[pos : pos + n], "utf-8", "surrogateescape"), pos + n


def _read_fields(buf, pos, end, limits):
    start = pos
    n, pos = read_uint(buf, pos, end)
    if n > end - pos:
        raise GobError(f"field count {n} exceeds the {end - pos} bytes left", start)
    if n > limits.max_fields:
        raise GobError(f"struct has {n} fields, more than max_fields={limits.max_fields}", start)
    fields = []
    for _ in range(n):
        if pos >= end:
            raise GobError("field list runs past the end of its message", pos)
        (name, id), pos = _read_record(buf, pos, end, ("string", "id"), limits)
        fields.append((name, id))
    return tuple(fields), pos


_READERS = {"string": _read_string, "id": _read_type_id, "int": read_int}


def _read_record(buf, pos, end, spec, limits):
    """Decode one of gob's bootstrap structs whose fields have the kinds in ``spec``
    (``"common"`` is an embedded CommonType); absent fields are None."""
    values = [None] * len(spec)
    field = -1
    while pos < end:
        start = pos
        delta, pos = read_uint(buf, pos, end)
        if delta == 0:
            break
        field += delta
        if field >= len(spec):
            raise GobError("field number out of range in a type definition", start)
        kind = spec[field]
        if kind == "common":
            values[field], pos = _read_record(buf, pos, end, ("string", "id"), limits)
        elif kind == "fields":
            values[field], pos = _read_fields(buf, pos, end, limits)
        else:
            values[field], pos = _READERS[kind](buf, pos, end)
    return values, pos


_KIND_SPECS = (
    ("common", "id", "int"),  # arrayType: CommonType, Elem, Len
    ("common", "id"),  # sliceType
    ("common", "fields"),  # structType
    ("common", "id", "id"),  # mapType: CommonType, Key, Elem
    ("common",),  # gobEncoderType
    ("common",),
    ("common",),
)


def parse_wire_type(id, buf, pos, end, limits):
    """Decode the ``wireType`` defining type ``id`` at ``pos``; return it and the next
    position. Only the encoding is checked here; what the definition refers to is
    checked when a value needs the type, as Go does."""
    kind = None
    name = ""
    elem = key = length = 0
    fields = ()
    field = -1
    while pos < end:
        start = pos
        delta, pos = read_uint(buf, pos, end)
        if delta == 0:
            break
        field += delta
        if field >= len(DEFINED_KINDS):
            raise GobError("field number out of range in a type definition", start)
        values, pos = _read_record(buf, pos, end, _KIND_SPECS[field], limits)
        kind = DEFINED_KINDS[field] if kind is None else "conflict"
        common = values[0] or (None, None)
        name = common[0] or ""
        if field == 0:
            elem, length = values[1] or 0, values[2] or 0
        elif field == 1:
            elem = values[1] or 0
        elif field == 2:
            fields = values[1] or ()
        elif field == 3:
            key, elem = values[1] or 0, values[2] or 0
    return WireType(id, kind, name, elem, key, length, fields), pos


def check_type(wt, pos):
    """Raise unless a definition is sound: it names one kind, an array's length is not
    negative, a struct's field names are non-empty and distinct. (Go checks every type a
    value's type reaches, before decoding the value; the plan does so as it meets them.)"""
    tid = wt.id
    if wt.kind is None or wt.kind == "conflict":
        raise GobError(f"type definition {tid} names {'several kinds' if wt.kind else 'no kind'}", pos)
    if wt.kind == "array" and wt.length < 0:
        raise GobError(f"array type {tid} has negative length {wt.length}", pos)
    if wt.kind == "struct":
        names = set()
        for fname, _ in wt.fields:
            if not fname:
                raise GobError(f"struct type {tid} has a field with an empty name", pos)
            if fname in names:
                raise GobError(f"struct type {tid} has two fields named {fname!r}", pos)
            names.add(fname)
