"""The gob codec's and the stat decoders' less travelled paths, each as a user meets it:
the error a bad value, type or stream gets, or the value an unusual but valid one
decodes to. Streams are assembled by hand (``gobwire``) where the encoder would not
write them."""

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from gobwire import array_type, fields, go_time, i, map_type, msg, s, single, struct_type, u, value

from statserver.gob import GobError, GoInterface, GoOpaque, GoTime, decode
from statserver.gob import gotypes as gt
from statserver.gob.encoder import Encoder, encode, float_bits, put_float, put_uint
from statserver.model import StatMessage
from statserver.wire import FrameError, decode_json, encode_stat_frame, gob_era
from statserver.wire.gob_era import UNKNOWN, gob_shape
from statserver.wire.gobstat import decode_stat_frame

# -- decoding: limits, interfaces, struct definitions --------------------------------


@pytest.mark.parametrize("limit", [0, -1, 2.5])
def test_a_limit_that_is_not_a_positive_int_is_refused(limit):
    with pytest.raises(ValueError, match=f"gob limit max_size must be a positive int, not {limit!r}"):
        decode(single(2, i(1)), max_size=limit)


def test_a_struct_value_ending_with_its_message_needs_no_terminator():
    # Go's decoder stops a struct at the end of its buffer as at a 0 delta.
    stream = POINT + value(65, u(1) + i(3) + u(1) + i(-4))  # no closing 0
    assert decode(stream) == {"X": 3, "Y": -4}


POINT = struct_type(65, "Point", [("X", 2), ("Y", 2)])


@pytest.mark.parametrize(("defn", "words"), [
    (array_type(65, 2, -1), "array type 65 has negative length -1"),
    (struct_type(65, "S", [("A", 2), ("A", 2)]), "struct type 65 has two fields named 'A'"),
    (struct_type(65, "S", [("", 2)]), "struct type 65 has a field with an empty name"),
    (msg(i(-65) + u(0)), "type definition 65 names no kind"),
])
def test_an_unsound_type_definition_is_refused_before_its_value(defn, words):
    with pytest.raises(GobError, match=words):
        decode(defn + value(65, u(0) + u(0)))


def test_our_encoders_stream_of_a_nameless_field_is_refused_as_go_refuses_it():
    stream = encode({"": 1}, gt.Struct("S", [("", gt.INT)]))
    with pytest.raises(GobError, match="struct type 65 has a field with an empty name"):
        decode(stream)


def test_a_field_list_shorter_than_its_count_is_refused():
    # 3 fields announced, one sent, then the message ends.
    body = i(-65) + u(3) + u(1) + u(1) + s("S") + u(1) + i(65) + u(0) + u(1) + u(3)
    body += u(1) + s("A") + u(1) + i(2) + u(0)
    with pytest.raises(GobError, match="field list runs past the end of its message"):
        decode(msg(body) + value(65, u(0)))


IFACE_HOLDER = struct_type(65, "Holder", [("V", 8)])


def _iface_stream(iface):
    """A Holder whose field V is the interface value ``iface`` (its encoded bytes)."""
    return IFACE_HOLDER + value(65, u(1) + iface + u(0))


@pytest.mark.parametrize(("iface", "words"), [
    (u(40) + b"int", "interface type name length 40 exceeds the"),
    (u(2000) + b"x" * 2000, "interface type name of 2000 bytes is longer than 1024"),
    (s("int") + i(2) + u(50) + i(7), "interface value length 50 exceeds the"),
    (s("any") + i(8) + u(1) + u(0), "interface value whose concrete type is an interface"),
])
def test_a_malformed_interface_value_is_refused(iface, words):
    with pytest.raises(GobError, match=words):
        decode(_iface_stream(iface))


def test_interfaces_nested_deeper_than_max_depth_are_refused():
    stream = _iface_stream(s("int") + i(2) + u(2) + u(0) + i(7))
    assert decode(stream) == {"V": GoInterface("int", 7)}
    with pytest.raises(GobError, match="nesting exceeds max_depth"):
        decode(stream, max_depth=1)  # the struct is depth 1, its interface 2


def test_maps_nested_deeper_than_max_depth_are_refused():
    # map[string]map[string]int: the inner map is at depth 2.
    stream = map_type(66, 6, 2) + map_type(65, 6, 66)
    stream += single(65, u(1) + s("a") + u(1) + s("b") + i(1))
    assert decode(stream) == {"a": {"b": 1}}
    with pytest.raises(GobError, match="nesting exceeds max_depth"):
        decode(stream, max_depth=1)


def test_a_map_keyed_by_interfaces_holding_arrays_gets_hashable_keys():
    pair = gt.Array(gt.INT, 2)
    enc = Encoder()
    enc.register("main.Pair", pair)
    stream = enc.encode({GoInterface("main.Pair", (1, 2)): "p"}, gt.Map(gt.INTERFACE, gt.STRING))
    got = decode(stream)
    assert got == {GoInterface("main.Pair", (1, 2)): "p"}
    (key,) = got
    assert isinstance(key.value, tuple)  # the array, frozen to be a dict key


@dataclasses.dataclass
class Timed:
    T: GoTime = GoTime()


def test_a_time_whose_nanoseconds_are_out_of_range_is_refused_in_a_typed_decode():
    good = go_time(1_700_000_000, 5)
    bad = good[:9] + (1_000_000_000).to_bytes(4, "big") + good[13:]
    time_type = msg(i(-66) + u(5) + u(1) + u(1) + s("Time") + u(1) + i(66) + u(0) + u(0) + u(0))
    head = struct_type(65, "Timed", [("T", 66)]) + time_type
    assert decode(head + value(65, fields((0, s(good)))), Timed).T == GoTime(1_700_000_000, 5)
    # Version 2 (a zone offset with seconds) takes the general route.
    v2 = go_time(1_700_000_000, 5, offset=3601)
    assert decode(head + value(65, fields((0, s(v2)))), Timed).T == GoTime(1_700_000_000, 5, 3601)
    with pytest.raises(GobError, match="not a valid Go time.Time encoding"):
        decode(head + value(65, fields((0, s(bad)))), Timed)
    # Generically the bytes stay opaque: nothing claims they are a time.
    assert decode(head + value(65, fields((0, s(bad)))))["T"] == GoOpaque("Time", bad, "gob")


# -- encoding: values and types that do not fit, and the rarer kinds ------------------

S = gt.Struct("S", [("N", gt.INT), ("Name", gt.STRING), ("Raw", gt.Slice(gt.UINT8)),
                    ("C", gt.COMPLEX128)])


def test_zero_fields_of_every_writer_are_left_out():
    enc = Encoder()
    definitions = enc.describe(S)
    zero = value(65, u(0))  # the struct's end: no field at all, as Go writes it
    assert enc.encode({"Raw": b"", "C": 0j, "N": 0.0, "Name": ""}, S) == zero
    assert enc.encode(None, S) == zero  # a None struct is its zero value
    assert decode(definitions + zero) == {"N": 0, "Name": "", "Raw": b"", "C": 0j}


def test_an_integral_float_is_sent_as_an_int_and_others_are_refused():
    assert decode(encode({"N": 3.0}, S))["N"] == 3
    with pytest.raises(GobError, match="int needs an int, not float"):
        encode({"N": 3.5}, S)


def test_a_string_field_refuses_other_types():
    with pytest.raises(GobError, match="string needs str or bytes, not int"):
        encode({"Name": 5}, S)


def test_bytes_for_a_marshaler_are_sent_as_they_are():
    ip = gt.Opaque("IP", "binary", "net")
    assert decode(encode(b"\x7f\0\0\1", ip)) == GoOpaque("IP", b"\x7f\0\0\1", "binary")


def test_a_nil_pointer_inside_an_interface_is_refused_as_go_does():
    enc = Encoder(registry={"main.P": gt.Pointer(gt.INT)})
    with pytest.raises(GobError, match=r"cannot encode nil pointer of type \*int inside interface"):
        enc.encode(GoInterface("main.P", None), gt.INTERFACE)


def test_register_names_a_concrete_type_for_interfaces():
    point = gt.Struct("Point", [("X", gt.INT)])
    enc = Encoder()
    with pytest.raises(GobError, match="type not registered for interface: main.Point"):
        enc.encode(GoInterface("main.Point", {"X": 1}), gt.INTERFACE)
    enc.register("main.Point", point)
    stream = enc.encode(GoInterface("main.Point", {"X": 1}), gt.INTERFACE)
    assert decode(stream) == GoInterface("main.Point", {"X": 1})


def test_something_that_is_not_a_go_type_is_refused():
    with pytest.raises(GobError, match="not a Go type: 'int'"):
        encode(1, "int")


def test_a_struct_field_that_is_not_a_go_type_is_a_gob_error():
    # (It was an AttributeError from inside the type table before.)
    enc = Encoder()
    with pytest.raises(GobError, match="not a Go type: 'int'"):
        enc.describe(gt.Struct("Bad", [("X", "int")]))
    with pytest.raises(GobError, match="not a Go type: 'int'"):
        enc.encode({"X": 1}, gt.Struct("Bad", [("X", "int")]))


def test_a_failed_encode_leaves_its_types_to_be_described_again():
    enc = Encoder()
    good = gt.Struct("Good", [("X", gt.INT)])
    with pytest.raises(GobError, match="int needs an int, not str"):
        enc.encode({"X": "two"}, good)
    # Nothing of the failed value was written: the next one comes with its definitions.
    assert decode(enc.encode({"X": 2}, good)) == {"X": 2}


def test_a_chain_nested_past_the_recursion_limit_is_a_gob_error():
    node = gt.Struct("Node")
    node.define([("Next", gt.Pointer(node))])
    chain = None
    for _ in range(5000):
        chain = {"Next": chain}
    with pytest.raises(GobError, match="value or type nested too deeply"):
        encode(chain, node)


def test_declared_structs_are_defined_once_and_named_in_errors():
    anon = gt.Struct("")
    with pytest.raises(GobError, match=r"cannot encode dict as Struct\(''\): struct  is declared but not defined"):
        encode({}, anon)
    anon.define([])
    assert anon.go_string() == "struct {}"
    with pytest.raises(ValueError, match="struct  is already defined"):
        anon.define([])


def test_a_named_map_is_named_in_errors():
    tags = gt.Map(gt.STRING, gt.INT, name="Tags")
    with pytest.raises(GobError, match="cannot encode str as main.Tags: "):
        encode("not pairs", tags)


@pytest.mark.parametrize(("t", "zero"), [
    (gt.BOOL, False), (gt.UINT16, 0), (gt.FLOAT32, 0.0), (gt.COMPLEX64, 0j), (gt.STRING, ""),
    (gt.BYTES, b""), (gt.Array(gt.INT8, 3), [0, 0, 0]), (gt.Slice(gt.UINT8), b""),
    (gt.Slice(gt.STRING), []), (gt.Struct("P", [("X", gt.FLOAT64), ("Ok", gt.BOOL)]),
                                {"X": 0.0, "Ok": False}),
    (gt.Pointer(gt.INT), None), (gt.Map(gt.STRING, gt.INT), None),
])
def test_zero_value_is_what_go_zeroes_a_type_to(t, zero):
    got = gt.zero_value(t)
    assert got == zero and type(got) is type(zero)


@pytest.mark.parametrize("x", [0.0, 1.0, -2.5, 1e300, 17.0])
def test_float_bits_is_what_put_float_sends(x):
    a, b = bytearray(), bytearray()
    put_uint(a, float_bits(x))
    put_float(b, x)
    assert a == b


# -- GoTime and datetime --------------------------------------------------------------


def test_go_time_to_and_from_datetime():
    naive = datetime(2026, 12, 3, 16, 30, 0, 123456)
    t = GoTime.from_datetime(naive)  # naive means UTC
    assert t == GoTime.from_datetime(naive.replace(tzinfo=timezone.utc))
    assert t.offset == 0 and t.nanos == 123456000
    cet = timezone(timedelta(hours=1))
    dt = GoTime(t.seconds, t.nanos + 789, 3600).to_datetime()
    assert dt == naive.replace(tzinfo=timezone.utc) and dt.utcoffset() == timedelta(hours=1)
    assert dt.tzinfo == cet
    assert GoTime(0, 0).to_datetime().tzinfo is timezone.utc


# -- the stat decoders ----------------------------------------------------------------


def test_go_zero_time_in_a_zone_means_no_timestamp():
    zero = GoTime().unix_nano
    m = StatMessage("ns", "rev", "pod", timestamp=zero, timestamp_offset=3600)
    got = decode_stat_frame(encode_stat_frame(m))
    assert (got.namespace, got.name, got.pod_name) == ("ns", "rev", "pod")
    assert got.timestamp is None and got.timestamp_offset is None


@pytest.mark.parametrize("ts", [2**63, -(2**63) - 1])
def test_a_json_timestamp_out_of_int64_is_refused(ts):
    doc = '{"Key": {"Namespace": "n", "Name": "r"}, "Stat": {"pod_name": "p", "timestamp": %d}}'
    with pytest.raises(FrameError, match="Stat.timestamp is out of range"):
        decode_json(doc % ts)


@pytest.mark.parametrize("stream", [
    # Key and Stat, but Stat an int: no era.
    struct_type(65, "StatMessage", [("Key", 6), ("Stat", 2)]) + single(2, i(0)),
    # Stat a struct without PodName.
    struct_type(66, "Stat", [("Other", 2)]) + struct_type(65, "StatMessage", [("Key", 6), ("Stat", 66)]),
    # Definitions that cannot be read.
    msg(i(-65) + u(9) + u(0)),
])
def test_gob_shape_of_what_is_no_stat_message_is_unknown(stream):
    assert gob_shape(stream) == UNKNOWN


def test_gob_shape_remembers_a_bounded_number_of_senders():
    frames = [encode_stat_frame(StatMessage("ns", "rev", "pod"), era="v10")]
    # 300 senders whose StatMessage types have distinct names: distinct definition runs.
    for n in range(300):
        t = gt.Struct(f"StatMessage{n}", [("Key", gt.STRING), ("Stat", gt.Struct(
            f"Stat{n}", [("PodName", gt.STRING), ("LameDuck", gt.BOOL)]))])
        frames.append(encode({"Key": "ns/rev", "Stat": {"PodName": "p"}}, t))
    assert [gob_shape(f) for f in frames] == ["v10"] + ["v02"] * 300
    assert len(gob_era._cache) == 256  # (no public door to the cache's size)
    assert gob_shape(frames[0]) == "v10"  # evicted, and read again
