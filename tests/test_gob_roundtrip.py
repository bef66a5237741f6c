"""Round trips: random Go types and values, encoded then decoded, come back unchanged.

Hypothesis draws nested Go types (structs, slices, arrays, maps, pointers, interfaces,
marshalers, time.Time, recursive structs) and values of them; ``decode(encode(v, t))``
must equal ``v`` in the decoder's generic form.
"""

import math
import string

import pytest
from gostrategies import go_ints, go_times
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statserver.gob import GobError, GoInterface, GoOpaque, GoTime
from statserver.gob import gotypes as gt
from statserver.gob.encoder import Encoder, encode, time_binary
from statserver.gob.values import FrozenStruct
from statserver.model import StatMessage

decoder = pytest.importorskip("statserver.gob.decoder")
decode, decode_all = decoder.decode, decoder.decode_all

SCALARS = [gt.BOOL, gt.INT, gt.INT8, gt.INT16, gt.INT32, gt.INT64, gt.UINT, gt.UINT8, gt.UINT16,
           gt.UINT32, gt.UINT64, gt.UINTPTR, gt.FLOAT32, gt.FLOAT64, gt.COMPLEX64, gt.COMPLEX128,
           gt.STRING, gt.BYTES]
KEY_SCALARS = [gt.BOOL, gt.INT, gt.INT8, gt.UINT16, gt.UINT64, gt.STRING]

PAIR = gt.Struct("Pair", [("A", gt.INT), ("B", gt.STRING)])
NODE = gt.Struct("Node")
NODE.define([("Value", gt.INT), ("Kids", gt.Slice(gt.Pointer(NODE))),
             ("ByName", gt.Map(gt.STRING, NODE))])
#: concrete types that interface values may hold, by registered name
HOLDER = gt.Struct("Holder", [("N", gt.INT), ("V", gt.INTERFACE)])  # interfaces inside interfaces
REGISTRY = {"int": gt.INT, "string": gt.STRING, "[]uint8": gt.BYTES, "main.Pair": gt.Pointer(PAIR),
            "main.Node": NODE, "[]float64": gt.Slice(gt.FLOAT64), "time.Time": gt.TIME,
            "main.Blob": gt.Opaque("Blob", "binary"), "main.Holder": HOLDER}

_names = iter(range(1, 1 << 30))


def _struct(field_types):
    n = next(_names)
    return gt.Struct(f"S{n}", [(f"F{i}", t) for i, t in enumerate(field_types)])


leaf_types = st.one_of(
    st.sampled_from(SCALARS),
    st.just(gt.TIME),
    st.just(gt.INTERFACE),
    st.sampled_from([gt.Opaque("Blob", "binary"), gt.Opaque("Txt", "text"), gt.Opaque("G")]),
    st.just(NODE),
)
key_types = st.one_of(
    st.sampled_from(KEY_SCALARS),
    st.lists(st.sampled_from(KEY_SCALARS), min_size=1, max_size=3).map(_struct),
)


def _containers(children):
    return st.one_of(
        children.map(gt.Slice),
        st.builds(gt.Array, children, st.integers(0, 3)),
        st.builds(gt.Map, key_types, children),
        # (None is a nil pointer, so a pointer to a nil interface has no Python form; a
        # pointer to a marshaler is sent unnamed: see test_pointer_to_time_is_sent_unnamed)
        children.filter(lambda t: not isinstance(gt.base(t), (gt.Opaque, gt.Interface)))
        .map(gt.Pointer),
        st.lists(children, max_size=5).map(_struct),
    )


go_types = st.recursive(leaf_types, _containers, max_leaves=12)


times = go_times(1 << 40)


def values(t, depth=0):
    """Values of Go type ``t`` in the decoder's generic form (no nil pointers: on the wire a
    nil pointer field is an absent field, which decodes to the element's zero value)."""
    if isinstance(t, gt.Pointer):
        return values(t.elem, depth)
    if isinstance(t, gt.Scalar):
        k = t.wire_id
        if k == gt.BOOL_ID:
            return st.booleans()
        if k in (gt.INT_ID, gt.UINT_ID):
            return go_ints(t)
        if k == gt.FLOAT_ID:
            return st.floats(width=t.bits, allow_nan=False)
        if k == gt.COMPLEX_ID:
            return st.complex_numbers(width=2 * t.bits, allow_nan=False)
        if k == gt.STRING_ID:
            return st.text(max_size=8)
        return st.binary(max_size=8)
    if t == gt.TIME:
        return times
    if isinstance(t, gt.Opaque):
        return st.binary(max_size=8).map(lambda data: GoOpaque(t.name, data, t.kind))
    if isinstance(t, gt.Interface):
        concrete = st.sampled_from(sorted(REGISTRY)) if depth < 3 else st.just("int")
        return st.one_of(st.none(), concrete.flatmap(
            lambda name: values(REGISTRY[name], depth + 1).map(lambda v: GoInterface(name, v))))
    if isinstance(t, gt.Slice):
        if t.elem == gt.UINT8:
            return st.binary(max_size=8)
        if depth >= 3:  # keeps recursive types finite
            return st.just([])
        return st.lists(values(t.elem, depth + 1), max_size=3)
    if isinstance(t, gt.Array):
        e = values(t.elem, depth + 1)
        return st.lists(e, min_size=t.length, max_size=t.length)
    if isinstance(t, gt.Map):
        if depth >= 3:
            return st.just({})
        if isinstance(t.key, gt.Struct):
            # in field order, as the decoder builds them (FrozenStruct's hash follows order)
            fields = [name for name, _ in t.key.fields]
            keys = values(t.key, depth + 1).map(
                lambda d: FrozenStruct((name, d[name]) for name in fields))
        else:
            keys = values(t.key, depth + 1)
        return st.dictionaries(keys, values(t.elem, depth + 1), max_size=3)
    if isinstance(t, gt.Struct):
        return st.fixed_dictionaries({name: values(ft, depth + 1) for name, ft in t.fields})
    raise AssertionError(t)


def expected(v, t, table):
    """``v`` as the generic decoder gives it back: a marshaler is named after the name its
    wire description carries, which depends on where the Go process first met the type."""
    if isinstance(t, gt.Pointer):
        return expected(v, t.elem, table)
    if isinstance(t, gt.Opaque):
        name = table.wire_name(t)
        if t == gt.TIME:
            return v if name == "Time" else GoOpaque(name, time_binary(v), "gob")
        return GoOpaque(name, v.data, v.kind)
    if isinstance(t, gt.Interface):
        return None if v is None else GoInterface(v.name, expected(v.value, REGISTRY[v.name], table))
    if isinstance(t, (gt.Slice, gt.Array)) and isinstance(v, list):
        return [expected(e, t.elem, table) for e in v]
    if isinstance(t, gt.Map):
        return {k: expected(e, t.elem, table) for k, e in v.items()}
    if isinstance(t, gt.Struct):
        return {name: expected(v[name], ft, table) for name, ft in t.fields}
    return v


def same(a, b):
    """Equality, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


typed_values = go_types.flatmap(lambda t: st.tuples(st.just(t), values(t)))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(typed_values)
def test_decode_of_encode_is_identity(tv):
    t, v = tv
    enc = Encoder(registry=REGISTRY)
    data = enc.encode(v, t)
    assert same(decode(data), expected(v, t, enc.table))


@SETTINGS
@given(st.lists(typed_values, min_size=1, max_size=4), st.integers(64, 5000))
def test_several_values_in_one_stream_from_a_long_running_process(tvs, first_id):
    enc = Encoder(first_id=first_id, registry=REGISTRY)
    data = b"".join(enc.encode(v, t) for t, v in tvs)
    assert same(decode_all(data), [expected(v, t, enc.table) for t, v in tvs])


@settings(max_examples=50, deadline=None)
@given(st.recursive(st.just({"Value": 0, "Kids": [], "ByName": {}}),
                    lambda kids: st.builds(lambda n, ks, m: {"Value": n, "Kids": ks, "ByName": m},
                                           go_ints(gt.INT), st.lists(kids, max_size=3),
                                           st.dictionaries(st.text(max_size=3), kids, max_size=2)),
                    max_leaves=20))
def test_recursive_struct(tree):
    assert decode(encode(tree, NODE)) == tree
    assert decode(encode(tree, gt.Pointer(NODE))) == tree


def test_nan_and_negative_zero():
    t = gt.Struct("F", [("A", gt.FLOAT64), ("B", gt.FLOAT32), ("C", gt.COMPLEX128)])
    out = decode(encode({"A": math.nan, "B": -0.0, "C": complex(math.nan, -0.0)}, t))
    assert math.isnan(out["A"]) and out["B"] == 0.0 and math.isnan(out["C"].real)
    assert math.copysign(1, decode(encode(-0.0, gt.FLOAT64))) == -1  # a singleton keeps its sign


def test_pointer_to_time_is_sent_unnamed_like_go():
    # Go names a *time.Time met first through a pointer with an empty name: only a target
    # type can tell it is a time.
    t = gt.Struct("S", [("T", gt.Pointer(gt.TIME))])
    when = GoTime(1552576167, 770464932, 3600)
    out = decode(encode({"T": when}, t))
    assert out["T"] in (when, GoOpaque("", time_binary(when), "gob"))


counts = st.one_of(st.floats(allow_nan=False), st.integers(-(2**31) + 1, 2**31 - 1).map(float))
stat_messages = st.builds(
    StatMessage,
    namespace=st.text(string.ascii_lowercase + "-", max_size=12),
    name=st.text(string.ascii_lowercase + "-0123456789", max_size=12),
    pod_name=st.text(max_size=12),
    average_concurrent_requests=st.floats(allow_nan=False),
    average_proxied_concurrent_requests=st.floats(allow_nan=False),
    request_count=counts,
    proxied_request_count=counts,
    process_uptime=st.floats(allow_nan=False),
    timestamp=st.one_of(st.none(), st.integers(-(1 << 62), 1 << 62)),
    timestamp_offset=st.one_of(st.none(), st.integers(-720, 840).filter(lambda m: m != -1)
                               .map(lambda m: m * 60)),
    received_at=st.none(),
)


def carried(m, era):
    """What a stat of era ``era`` carries of ``m`` (the rest is zero)."""
    if m.timestamp is None:
        m = m._replace(timestamp_offset=None)
    if era != "v12":
        m = m._replace(process_uptime=0.0)
    if era in ("v02", "v06"):  # int32 counts
        m = m._replace(request_count=float(int(m.request_count)),
                       proxied_request_count=float(int(m.proxied_request_count)))
    if era == "v02":
        m = m._replace(average_proxied_concurrent_requests=0.0, proxied_request_count=0.0)
    return m


@settings(max_examples=300, deadline=None)
@given(stat_messages, st.sampled_from(["v02", "v06", "v07", "v08", "v10", "v12"]))
def test_stat_frame_round_trip(m, era):
    from statserver.wire.gobstat import decode_stat_frame, encode_stat_frame

    if era in ("v02", "v06") and not all(-(2**31) - 1 < c < 2**31 for c in (
            m.request_count, m.proxied_request_count)):
        with pytest.raises(GobError, match="int32"):
            encode_stat_frame(m, era=era)
        return
    frame = encode_stat_frame(m, era=era)
    try:
        got = decode_stat_frame(frame)
    except NotImplementedError:
        pytest.skip("decode_stat_frame is not written yet")
    assert got == carried(m, era)


BOX = gt.Struct("Box", [("X", gt.STRING), ("V", gt.INTERFACE), ("Y", gt.INT)])


def test_nested_interface_with_definitions_inside():
    # Go 1.19 writes these very bytes (tests/test_gob_encode.py::test_one_go_process_streams):
    # the inner value's type definitions split it, and its byte count is short
    pair = gt.Struct("Pair", [("A", gt.INT), ("B", gt.INTERFACE)])
    leaf = gt.Struct("Leaf", [("L", gt.Slice(gt.FLOAT64))])
    v = {"X": "x", "V": GoInterface("main.Pair", {"A": 1, "B": GoInterface("main.Leaf", {"L": [1.5]})}),
         "Y": 7}
    data = encode(v, BOX, registry={"main.Pair": pair, "main.Leaf": gt.Pointer(leaf)})
    assert decode(data) == v


junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.complex_numbers(),
              st.text(max_size=4), st.binary(max_size=4), times,
              st.builds(GoOpaque, st.text(max_size=3), st.binary(max_size=3)),
              st.builds(GoInterface, st.sampled_from([*REGISTRY, "main.Nope"]), st.integers())),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3),
                            st.builds(GoInterface, st.sampled_from(sorted(REGISTRY)), inner)),
    max_leaves=10,
)


@SETTINGS
@given(go_types, junk)
def test_any_python_value_gives_a_stream_or_gob_error(t, value):
    """Whatever Python value meets whatever Go type: a stream Go can read, or GobError."""
    try:
        data = Encoder(registry=REGISTRY).encode(value, t)
    except GobError:
        return
    decode(data)  # what was written is a well-formed stream
