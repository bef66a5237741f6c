"""The gob decoder on hand-assembled streams: generic and typed decoding, Go times,
limits, hostile input and error offsets."""

import dataclasses
import math
import time
from typing import Any, NamedTuple

import pytest
from gobwire import (
    array_type,
    encoder_type,
    f,
    fields,
    go_time,
    i,
    map_type,
    msg,
    s,
    single,
    slice_type,
    struct_type,
    u,
    value,
)

from statserver.gob import (
    FrozenStruct,
    GobError,
    GoInterface,
    GoOpaque,
    GoTime,
    decode,
    decode_all,
    decoder,
)
from statserver.gob.decoder import clear_cache

POINT = struct_type(70, "Point", [("X", 2), ("Y", 2)])


def point(x, y):
    return value(70, fields((0, i(x)), (1, i(y))))


# --- generic decoding -------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream, expected",
    [
        (single(1, u(1)), True),
        (single(2, i(-129)), -129),
        (single(3, u(2**64 - 1)), 2**64 - 1),
        (single(4, f(-2.5)), -2.5),
        (single(7, f(1.5) + f(-2.0)), complex(1.5, -2.0)),
        (single(6, s("héllo")), "héllo"),
        (single(5, s(b"\x00\xff")), b"\x00\xff"),
        (slice_type(65, 2) + single(65, u(3) + i(1) + i(-2) + i(300)), [1, -2, 300]),
        (array_type(65, 2, 2) + single(65, u(2) + i(0) + i(5)), [0, 5]),
        (map_type(65, 6, 2) + single(65, u(2) + s("a") + i(1) + s("b") + i(2)), {"a": 1, "b": 2}),
    ],
    ids=["bool", "int", "uint", "float", "complex", "string", "bytes", "slice", "array", "map"],
)
def test_generic_values(stream, expected):
    assert decode(stream) == expected


def test_struct_has_every_field_with_zero_values_for_absent_ones():
    stream = (
        struct_type(
            80,
            "All",
            [("S", 6), ("L", 81), ("A", 82), ("M", 83), ("I", 8), ("P", 70), ("T", 84), ("F", 4)],
        )
        + slice_type(81, 2)
        + array_type(82, 1, 3)
        + map_type(83, 6, 6)
        + POINT
        + encoder_type(84, "Time")
        + value(80, fields((7, f(1.0))))
    )
    assert decode(stream) == {
        "S": "",
        "L": [],
        "A": [False, False, False],
        "M": {},
        "I": None,
        "P": {"X": 0, "Y": 0},
        "T": GoTime(),
        "F": 1.0,
    }


def test_nan_and_infinities():
    assert math.isnan(decode(single(4, f(math.nan))))
    assert decode(single(4, f(-math.inf))) == -math.inf


def test_several_values_and_type_ids_not_starting_at_65():
    stream = POINT + point(1, 2) + single(6, s("between")) + point(3, 4)
    assert decode_all(stream) == [{"X": 1, "Y": 2}, "between", {"X": 3, "Y": 4}]
    assert decode_all(b"") == []


def test_decode_wants_exactly_one_value():
    with pytest.raises(GobError, match="no value"):
        decode(b"")
    with pytest.raises(GobError, match="one value") as info:
        decode(POINT + point(1, 2) + point(3, 4))
    assert info.value.offset == len(POINT + point(1, 2))


def test_recursive_type_and_forward_references():
    # type Node struct { Value int; Kids []Node }: the struct refers to a slice defined later
    stream = struct_type(90, "Node", [("Value", 2), ("Kids", 91)]) + slice_type(91, 90)
    leaf = fields((0, i(2)))
    stream += value(90, fields((0, i(1)), (1, u(1) + leaf)))
    assert decode(stream) == {"Value": 1, "Kids": [{"Value": 2, "Kids": []}]}


def test_self_containing_struct_zero_value_ends_in_none():
    # type L struct { Next *L; V int }: an absent Next is a nil pointer
    stream = struct_type(90, "L", [("Next", 90), ("V", 2)]) + value(90, fields((1, i(7))))
    assert decode(stream) == {"Next": None, "V": 7}


def test_map_with_struct_keys_and_nan_keys():
    stream = POINT + map_type(71, 70, 6) + single(71, u(1) + fields((0, i(1))) + s("one"))
    (key, val), = decode(stream).items()
    assert isinstance(key, FrozenStruct) and key == {"X": 1, "Y": 0} and val == "one"
    with pytest.raises(TypeError):
        key["X"] = 2
    # a user looks the key up with a dict built in another field order
    assert decode(stream)[FrozenStruct({"Y": 0, "X": 1})] == "one"
    nan_keys = map_type(72, 4, 2) + single(72, u(2) + f(math.nan) + i(1) + f(math.nan) + i(2))
    assert sorted(decode(nan_keys).values()) == [1, 2]


def test_interface_with_type_definitions_in_the_middle_of_the_value():
    # struct { Name string; Shape interface{} } holding a Circle{R float64} whose type is
    # defined inside the outer value, which therefore spans two messages.
    outer = struct_type(66, "WithIface", [("Name", 6), ("Shape", 8)])
    circle_def = struct_type(67, "Circle", [("R", 4)])[1:]  # the message without its length
    part1 = i(66) + u(1) + s("c") + u(1) + s("main.Circle") + circle_def
    body = fields((0, f(1.5)))
    part2 = i(67) + u(len(body)) + body + u(0)
    stream = outer + msg(part1) + msg(part2)
    assert decode(stream) == {"Name": "c", "Shape": GoInterface("main.Circle", {"R": 1.5})}


def test_interface_nil_and_builtin_concrete_type():
    outer = struct_type(66, "W", [("Shape", 8)])
    nil = value(66, fields((0, u(0))))
    assert decode(outer + nil) == {"Shape": None}
    forty_two = value(66, fields((0, s("int") + i(2) + u(2) + u(0) + i(42))))
    assert decode(outer + forty_two) == {"Shape": GoInterface("int", 42)}


def test_gob_encoders_are_opaque_except_time():
    stream = (
        struct_type(66, "H", [("G", 67), ("B", 68), ("T", 69)])
        + encoder_type(67, "Opaque")
        + encoder_type(68, "Bin", "binary")
        + encoder_type(69, "Txt", "text")
        + value(66, fields((0, s(b"\x01\x02")), (1, s(b"b")), (2, s(b"t"))))
    )
    assert decode(stream) == {
        "G": GoOpaque("Opaque", b"\x01\x02", "gob"),
        "B": GoOpaque("Bin", b"b", "binary"),
        "T": GoOpaque("Txt", b"t", "text"),
    }


# --- Go times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offset",
    [None, 0, 3600, -5 * 3600, 5 * 3600 + 30 * 60 + 7],
    ids=["utc", "zero-fixed", "cet", "est", "seconds-v2"],
)
def test_time_keeps_nanoseconds_and_zone_offset(offset):
    stream = encoder_type(65, "Time") + single(65, s(go_time(1552572567, 770464932, offset)))
    t = decode(stream)
    assert t == GoTime(1552572567, 770464932, offset)
    assert t.unix_nano == 1552572567770464932
    assert t.rfc3339() == "2019-03-14T14:09:27.770464932Z"


def test_time_before_1970_and_zero_time():
    stream = encoder_type(65, "Time") + single(65, s(go_time(-14163140)))
    assert decode(stream).rfc3339() == "1969-07-21T01:47:40Z"
    zero = encoder_type(65, "Time") + single(65, s(go_time(-62135596800)))
    assert decode(zero).is_zero()


def test_named_time_with_a_foreign_payload_stays_opaque():
    stream = encoder_type(65, "Time") + single(65, s(b"\x07junk"))
    assert decode(stream) == GoOpaque("Time", b"\x07junk", "gob")


# --- typed decoding ---------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    X: int = 0
    Y: int = 0


class NsName(NamedTuple):
    Namespace: str = ""
    Name: str = ""


@dataclasses.dataclass
class Holder:
    Key: str | NsName = ""
    When: GoTime | None = None
    Count: float = -1.0
    Tags: list[str] = dataclasses.field(default_factory=list)
    Extra: Any = None


def test_typed_dataclass_and_missing_fields_keep_defaults():
    assert decode(POINT + value(70, fields((1, i(5)))), Point) == Point(0, 5)


def test_typed_skips_wire_fields_the_target_lacks():
    stream = struct_type(66, "P3", [("X", 2), ("Z", 67), ("Y", 2)]) + slice_type(67, 6)
    stream += value(66, fields((0, i(1)), (1, u(2) + s("a") + s("b")), (2, i(2))))
    assert decode(stream, Point) == Point(1, 2)


def test_typed_union_key_unnamed_time_and_int_counts():
    # old senders: string key, *time.Time sent as an unnamed GobEncoder, int32 count
    old = struct_type(66, "Old", [("Key", 6), ("When", 67), ("Count", 2)]) + encoder_type(67, "")
    old += value(66, fields((0, s("ns/rev")), (1, s(go_time(10, 5, 60))), (2, i(3))))
    assert decode(old, Holder) == Holder("ns/rev", GoTime(10, 5, 60), 3.0)
    # newer senders: struct key, named time.Time, float64 count
    new = struct_type(66, "New", [("Key", 68), ("When", 67), ("Count", 4)])
    new += encoder_type(67, "Time") + struct_type(68, "NN", [("Namespace", 6), ("Name", 6)])
    new += value(66, fields((0, fields((0, s("ns")), (1, s("rev")))), (2, f(2.5))))
    got = decode(new, Holder)
    assert got == Holder(NsName("ns", "rev"), None, 2.5)
    assert isinstance(got.Key, NsName)


def test_typed_mismatch_is_a_gob_error():
    stream = struct_type(66, "Bad", [("Count", 6)]) + value(66, fields((0, s("x"))))
    with pytest.raises(GobError, match="cannot decode"):
        decode(stream, Holder)
    unrelated = struct_type(66, "U", [("Q", 2)]) + value(66, fields((0, i(1))))
    with pytest.raises(GobError, match="no field"):
        decode(unrelated, Point)


def test_typed_time_target_rejects_a_foreign_payload():
    stream = struct_type(66, "T", [("When", 67)]) + encoder_type(67, "")
    stream += value(66, fields((0, s(b"\x01short"))))
    with pytest.raises(GobError, match="time"):
        decode(stream, Holder)


def test_typed_any_field_and_lists():
    stream = struct_type(66, "H", [("Tags", 67), ("Extra", 68)]) + slice_type(67, 6)
    stream += map_type(68, 6, 2) + value(66, fields((0, u(1) + s("a")), (1, u(1) + s("k") + i(9))))
    assert decode(stream, Holder) == Holder(Tags=["a"], Extra={"k": 9})


# --- limits and hostile input -----------------------------------------------------------


def nested_slices(depth):
    """type S []S holding a value nested ``depth`` deep."""
    body = u(0)
    for _ in range(depth - 1):
        body = u(1) + body
    return slice_type(65, 65) + single(65, body)


def test_depth_limit():
    assert decode(nested_slices(50)) is not None
    with pytest.raises(GobError, match="max_depth"):
        decode(nested_slices(150))
    assert decode(nested_slices(150), max_depth=200) is not None


@pytest.mark.parametrize(
    "option, stream",
    [
        ("max_size", POINT + point(1, 2)),
        ("max_message", POINT + point(1, 2)),
        ("max_types", POINT + slice_type(71, 2) + point(1, 2)),
        ("max_fields", POINT + point(1, 2)),
    ],
)
def test_limits(option, stream):
    decode_all(stream)
    with pytest.raises(GobError, match=option):
        decode_all(stream, **{option: 1})


def test_unknown_limit_is_a_programming_error():
    with pytest.raises(TypeError):
        decode(b"", max_bogus=3)


def test_huge_counts_fail_fast_without_allocating():
    started = time.monotonic()
    with pytest.raises(GobError, match="exceeds"):
        decode(slice_type(65, 2) + single(65, u(2**62) + i(1)))
    with pytest.raises(GobError, match="exceeds"):
        decode(map_type(65, 2, 2) + single(65, u(2**40)))
    with pytest.raises(GobError, match="exceeds"):
        decode(single(6, u(2**63)))
    # an absent field of a huge array type would need a huge zero value
    huge = struct_type(66, "H", [("A", 67), ("B", 2)]) + array_type(67, 2, 2**40)
    with pytest.raises(GobError, match="budget"):
        decode(huge + value(66, fields((1, i(1)))))
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "stream, message, offset",
    [
        (POINT + point(1, 2)[:-2], "past the end of the stream", len(POINT)),
        (POINT + value(70, u(5) + i(1) + u(0)), "field number 4 out of range", len(POINT) + 3),
        (POINT + POINT, "defined twice", len(POINT) + 1),
        (struct_type(60, "Low", []), "predefined id 60", 1),
        (value(99, u(0)), "never defined", 3),
        (single(6, s("x")) + b"\x00", "empty message", 5),
        (value(6, u(1) + s("x")), "non-zero field delta", 2),
        (msg(i(6) + u(0) + s("x") + b"\x00"), "extra data after a value", 5),
        (slice_type(65, 2) + single(65, u(2) + i(1)), "element count 2 exceeds the 1 bytes", 17),
        (single(6, u(5) + b"ab"), "length 5 exceeds the 2 bytes left", 3),
        (single(2, b""), "unexpected end of message", 3),
        (single(6, u(0)) + b"\x01\x80", "invalid unsigned integer", 5),
    ],
)
def test_error_messages_and_offsets(stream, message, offset):
    with pytest.raises(GobError, match=message) as info:
        decode_all(stream)
    assert info.value.offset == offset
    assert f"at byte {offset}" in str(info.value)


def test_undefined_type_reachable_but_unused_is_rejected():
    # Go checks every type a value's type reaches, even if the value never needs it
    stream = struct_type(66, "S", [("A", 2), ("B", 99)]) + value(66, fields((0, i(1))))
    with pytest.raises(GobError, match="never defined"):
        decode(stream)


def test_cache_gives_the_same_answers_as_a_cold_decoder():
    good = POINT + point(1, 2)
    bad = POINT + value(70, u(5) + i(1) + u(0))
    for stream in (good, bad, good):
        clear_cache()
        cold = _outcome(stream)
        assert _outcome(stream) == cold  # warm
        assert _outcome(stream, max_depth=50) == cold  # limits are part of the cache key


def _outcome(stream, **limits):
    try:
        return decode_all(stream, **limits)
    except GobError as exc:
        return str(exc)


def test_wide_structs_are_charged_to_the_budget():
    # 1000 empty elements of a 2000-field struct: 17 kB in, 2 000 000 dict entries out
    wide = struct_type(66, "W", [(f"F{n}", 2) for n in range(2000)]) + slice_type(67, 66)
    assert len(decode(wide + single(67, u(4) + u(0) * 4))) == 4
    with pytest.raises(GobError, match="budget"):
        decode(wide + single(67, u(1000) + u(0) * 1000))


def test_big_types_decode_without_code_generation(monkeypatch):
    monkeypatch.setattr(decoder, "EXECUTION", "compiled")
    compiled = []  # the plans handed to the code generator
    compile_top = decoder.compile_top
    monkeypatch.setattr(decoder, "compile_top", lambda p: compiled.append(p) or compile_top(p))
    big = struct_type(66, "Big", [(f"F{n}", 2) for n in range(decoder.COMPILE_MAX_SIZE + 1)])
    stream = big + value(66, fields((3, i(7))))
    for _ in range(3):
        got = decode(stream)
        assert got["F3"] == 7 and got["F0"] == 0
    assert compiled == []


def test_values_of_gobs_own_bootstrap_types():
    # a value of type 16 (wireType) holding the definition of a slice type
    definition = slice_type(65, 2, name="Ints")[3:]  # the wireType after length and id
    got = decode(value(16, definition))
    assert got["SliceT"] == {"CommonType": {"Name": "Ints", "Id": 65}, "Elem": 2}
    assert got["ArrayT"] == {"CommonType": {"Name": "", "Id": 0}, "Elem": 0, "Len": 0}


def test_bytes_like_input():
    stream = POINT + point(1, 2)
    assert decode(bytearray(stream)) == decode(memoryview(stream)) == {"X": 1, "Y": 2}
    with pytest.raises(TypeError):
        decode(5)


def test_nested_interface_with_definitions_inside_as_go_writes_it(monkeypatch):
    # Box{X: "x", V: Pair{A: 1, B: Leaf{L: [1.5]}}, Y: 7}, V and B interfaces. Go flushes the
    # message at each type definition met inside an interface value; inside the outer
    # interface, the inner definitions are count-delimited chunks, and the outer value's
    # byte count covers only its first chunk.
    box = struct_type(66, "Box", [("X", 6), ("V", 8), ("Y", 2)])
    pair_def = struct_type(67, "Pair", [("A", 2), ("B", 8)])[1:]
    leaf_def = struct_type(68, "Leaf", [("L", 69)])[1:]
    slice_def = slice_type(69, 4)[1:]
    m1 = i(66) + u(1) + s("x") + u(1) + s("main.Pair") + pair_def
    leaf_value = u(1) + u(1) + f(1.5) + u(0)
    chunk1 = u(1) + i(1) + u(1) + s("main.Leaf") + leaf_def
    chunk3 = i(68) + u(len(leaf_value)) + leaf_value + u(0)
    m2 = i(67) + msg(chunk1) + msg(slice_def) + msg(chunk3) + u(1) + i(7) + u(0)
    stream = box + msg(m1) + msg(m2)
    expected = {
        "X": "x",
        "V": GoInterface("main.Pair", {"A": 1, "B": GoInterface("main.Leaf", {"L": [1.5]})}),
        "Y": 7,
    }
    assert decode(stream) == expected  # interpreted
    monkeypatch.setattr(decoder, "EXECUTION", "compiled")
    clear_cache()
    assert decode(stream) == expected  # compiled


class Everything(NamedTuple):
    Points: list[Point] = []
    ByName: dict[str, Point] = {}
    Flag: bool = False
    Raw: bytes = b""
    Z: complex = 0j
    Blob: GoOpaque | None = None
    Count: int = 0


def test_typed_containers_and_scalars_on_both_paths(monkeypatch):
    stream = (
        struct_type(
            66,
            "E",
            [("Points", 67), ("ByName", 68), ("Flag", 1), ("Raw", 5), ("Z", 7), ("Blob", 69), ("Count", 3)],
        )
        + slice_type(67, 70)
        + map_type(68, 6, 70)
        + encoder_type(69, "Blob", "binary")
        + POINT
        + value(
            66,
            fields(
                (0, u(2) + fields((0, i(1))) + fields((1, i(2)))),
                (1, u(1) + s("p") + fields((0, i(3)), (1, i(4)))),
                (2, u(1)),
                (3, s(b"\x00\x01")),
                (4, f(1.0) + f(-1.0)),
                (5, s(b"bin")),
                (6, u(2**64 - 1)),
            ),
        )
    )
    expected = Everything(
        [Point(1, 0), Point(0, 2)],
        {"p": Point(3, 4)},
        True,
        b"\x00\x01",
        complex(1, -1),
        GoOpaque("Blob", b"bin", "binary"),
        2**64 - 1,
    )
    assert decode(stream, Everything) == expected
    monkeypatch.setattr(decoder, "EXECUTION", "compiled")
    clear_cache()
    assert decode(stream, Everything) == expected


def test_deeply_nested_types_and_skipped_values_cve_style(monkeypatch):
    # CVE-2022-30635 / CVE-2024-34156 shapes: 4 000 nested slice types, a value nested all
    # the way down, decoded generically and skipped by a typed target that lacks the field.
    depth = 4_000
    defs = b"".join(slice_type(100 + n, 101 + n) for n in range(depth - 1)) + slice_type(99 + depth, 2)
    body = u(1) * (depth - 1) + u(1) + i(5)
    holder = struct_type(66, "H", [("Deep", 100), ("X", 2)])
    stream = holder + defs + value(66, fields((0, body), (1, i(3))))
    empty = holder + defs + value(66, fields((1, i(3))))
    for execution in ("interpreted", "compiled"):
        monkeypatch.setattr(decoder, "EXECUTION", execution)
        clear_cache()
        started = time.monotonic()
        for target in (None, Point):
            with pytest.raises(GobError, match="max_depth"):
                decode(stream, target)
        assert decode(empty)["X"] == 3
        assert decode(empty, Point) == Point(3, 0)
        assert time.monotonic() - started < 5
