"""Go's own decoder reads what the encoder writes.

``tests/gointerop/main.go`` decodes gob streams with Go's ``encoding/gob`` into Go types
declared the same way as here and prints each value as JSON; hypothesis draws values,
the encoder writes them, and Go must read back exactly those values. Skipped where no Go
toolchain is installed (Debian's ``golang-go``); under CI=true that skip is a failure.
"""

import base64
import json
import math
import os
import selectors
import shutil
import subprocess
from pathlib import Path

import pytest
from gostrategies import go_ints, go_times
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statserver.gob import GoInterface, GoTime
from statserver.gob import gotypes as gt
from statserver.gob.encoder import encode
from statserver.model import rfc3339_ns

HERE = Path(__file__).resolve().parent

INNER = gt.Struct("Inner", [("A", gt.INT), ("B", gt.STRING)])
LEAF = gt.Struct("Leaf", [("L", gt.Slice(gt.FLOAT64))])
NODE = gt.Struct("Node")
NODE.define([("Value", gt.INT), ("Kids", gt.Slice(gt.Pointer(NODE))),
             ("ByName", gt.Map(gt.STRING, NODE))])
SCALARS = [("B", gt.BOOL), ("I", gt.INT), ("I8", gt.INT8), ("I16", gt.INT16), ("I32", gt.INT32),
           ("I64", gt.INT64), ("U", gt.UINT), ("U8", gt.UINT8), ("U16", gt.UINT16),
           ("U32", gt.UINT32), ("U64", gt.UINT64), ("Uptr", gt.UINTPTR), ("F32", gt.FLOAT32),
           ("F64", gt.FLOAT64), ("C64", gt.COMPLEX64), ("C128", gt.COMPLEX128),
           ("S", gt.STRING), ("Bs", gt.BYTES)]
ALL_KINDS = gt.Struct("AllKinds", [*SCALARS, ("T", gt.TIME), ("PT", gt.Pointer(gt.TIME))])
CONTAINERS = gt.Struct("Containers", [
    ("Ints", gt.Slice(gt.INT)), ("Strs", gt.Slice(gt.STRING)), ("Arr", gt.Array(gt.INT16, 3)),
    ("M", gt.Map(gt.STRING, gt.FLOAT64)), ("MI", gt.Map(gt.INT32, gt.Slice(gt.STRING))),
    ("Nested", gt.Map(gt.STRING, gt.Map(gt.UINT8, gt.BOOL))), ("In", INNER),
    ("PIn", gt.Pointer(INNER)), ("Ins", gt.Slice(INNER)), ("PIns", gt.Slice(gt.Pointer(INNER))),
    ("ArrIn", gt.Array(INNER, 2)), ("Iface", gt.INTERFACE), ("Ifaces", gt.Slice(gt.INTERFACE)),
    ("IM", gt.Map(gt.STRING, gt.INTERFACE)),
    ("Anon", gt.Struct("", [("X", gt.INT8), ("Y", gt.INT8)])),
    ("Matrix", gt.Slice(gt.Slice(gt.FLOAT64))), ("ByInner", gt.Map(INNER, gt.STRING)),
])
REGISTRY = {"main.Inner": INNER, "main.Leaf": gt.Pointer(LEAF), "main.Node": NODE,
            "time.Time": gt.TIME, "int": gt.INT, "string": gt.STRING, "[]uint8": gt.BYTES,
            "float64": gt.FLOAT64, "[]string": gt.Slice(gt.STRING)}


@pytest.fixture(scope="module")
def go_decoder(tmp_path_factory):
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain (apt-get install golang-go)")
    binary = tmp_path_factory.mktemp("gointerop") / "gointerop"
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="",
               GOCACHE=os.environ.get("GOCACHE", "/tmp/statserver-gointerop-gocache"))
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=HERE / "gointerop", env=env,
                   check=True, timeout=300)
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)

    def decode(kind, data):
        proc.stdin.write(f"{kind} {data.hex()}\n")
        proc.stdin.flush()
        assert sel.select(timeout=10), "the Go decoder did not answer within 10 s"
        line = proc.stdout.readline()
        assert line, "the Go decoder exited"
        return json.loads(line)

    yield decode
    proc.stdin.close()
    proc.wait(timeout=10)


# ---- the canonical JSON Go prints, computed from the Python value ----------------------------


def _float(f):
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return f


def canonical(v, t):
    if isinstance(t, gt.Pointer):
        return None if v is None else canonical(v, t.elem)
    if t == gt.TIME:
        v = v or GoTime()
        return {"time": rfc3339_ns(v.unix_nano), "offset": v.offset}
    if isinstance(t, gt.Scalar):
        if t.wire_id == gt.FLOAT_ID:
            return _float(v)
        if t.wire_id == gt.COMPLEX_ID:
            return [_float(v.real), _float(v.imag)]
        if t.wire_id == gt.BYTES_ID:
            return {"bytes": base64.b64encode(v).decode()}
        return v
    if isinstance(t, gt.Struct):
        v = v or {}
        return {name: canonical(v.get(name, gt.zero_value(ft)), ft) for name, ft in t.fields}
    if isinstance(t, (gt.Slice, gt.Array)):
        return [canonical(e, t.elem) for e in (v or [])]
    if isinstance(t, gt.Map):
        pairs = v.items() if isinstance(v, dict) else (v or [])
        return sorted(([canonical(k, t.key), canonical(e, t.elem)] for k, e in pairs), key=json.dumps)
    if isinstance(t, gt.Interface):
        if v is None:
            return None
        return {"type": v.name, "value": canonical(v.value, REGISTRY[v.name])}
    raise AssertionError(t)


def from_go(value, t):
    """Go's output with its maps in a fixed order, to compare with ``canonical``."""
    if isinstance(t, gt.Pointer):
        return None if value is None else from_go(value, t.elem)
    if isinstance(t, gt.Struct):
        return {name: from_go(value[name], ft) for name, ft in t.fields}
    if isinstance(t, (gt.Slice, gt.Array)) and isinstance(value, list):
        return [from_go(e, t.elem) for e in value]
    if isinstance(t, gt.Map):
        return sorted(([from_go(k, t.key), from_go(e, t.elem)] for k, e in value), key=json.dumps)
    if isinstance(t, gt.Interface) and value is not None:
        return {"type": value["type"], "value": from_go(value["value"], REGISTRY[value["type"]])}
    if t in (gt.FLOAT32, gt.FLOAT64) and not isinstance(value, str):
        return float(value)  # Go's JSON writes 4.4e16 as 44000000000000000
    if t in (gt.COMPLEX64, gt.COMPLEX128):
        return [from_go(part, gt.FLOAT64) for part in value]
    return value


# ---- values ---------------------------------------------------------------------------------


times = go_times(253402300799)  # years 1-9999, which RFC 3339 can write


def scalar(t):
    k = t.wire_id
    if k == gt.BOOL_ID:
        return st.booleans()
    if k in (gt.INT_ID, gt.UINT_ID):
        return go_ints(t)
    if k == gt.FLOAT_ID:
        return st.floats(width=t.bits)
    if k == gt.COMPLEX_ID:
        return st.complex_numbers(width=2 * t.bits)
    if k == gt.STRING_ID:
        return st.text(max_size=6)
    return st.binary(max_size=6)


inners = st.fixed_dictionaries({"A": go_ints(gt.INT), "B": st.text(max_size=4)})
leaves = st.fixed_dictionaries({"L": st.lists(st.floats(allow_nan=False), max_size=3)})
nodes = st.recursive(
    st.just({"Value": 0, "Kids": [], "ByName": {}}),
    lambda kids: st.fixed_dictionaries({
        "Value": go_ints(gt.INT), "Kids": st.lists(kids, max_size=2),
        "ByName": st.dictionaries(st.text(max_size=3), kids, max_size=2)}),
    max_leaves=8,
)
interfaces = st.one_of(
    st.none(),
    st.builds(GoInterface, st.just("main.Inner"), inners),
    st.builds(GoInterface, st.just("main.Leaf"), leaves),
    st.builds(GoInterface, st.just("main.Node"), nodes),
    st.builds(GoInterface, st.just("time.Time"), times),
    st.builds(GoInterface, st.just("int"), go_ints(gt.INT)),
    st.builds(GoInterface, st.just("string"), st.text(max_size=5)),
    st.builds(GoInterface, st.just("[]uint8"), st.binary(max_size=5)),
    st.builds(GoInterface, st.just("float64"), st.floats()),
    st.builds(GoInterface, st.just("[]string"), st.lists(st.text(max_size=3), max_size=3)),
)
all_kinds = st.fixed_dictionaries(
    {name: scalar(t) for name, t in SCALARS},
    optional={"T": times, "PT": st.one_of(st.none(), times)},
)
containers = st.fixed_dictionaries({}, optional={
    "Ints": st.lists(go_ints(gt.INT), max_size=4),
    "Strs": st.lists(st.text(max_size=3), max_size=4),
    "Arr": st.lists(go_ints(gt.INT16), min_size=3, max_size=3),
    "M": st.dictionaries(st.text(max_size=3), st.floats(), max_size=3),
    "MI": st.dictionaries(go_ints(gt.INT32), st.lists(st.text(max_size=2), max_size=2), max_size=3),
    "Nested": st.dictionaries(st.text(max_size=2), st.dictionaries(go_ints(gt.UINT8), st.booleans(),
                                                                     max_size=2), max_size=2),
    "In": inners,
    "PIn": st.one_of(st.none(), inners),
    "Ins": st.lists(inners, max_size=3),
    "PIns": st.lists(inners, max_size=3),
    "ArrIn": st.lists(inners, min_size=2, max_size=2),
    "Iface": interfaces,
    "Ifaces": st.lists(interfaces, max_size=3),
    "IM": st.dictionaries(st.text(max_size=2), interfaces, max_size=3),
    "Anon": st.fixed_dictionaries({"X": go_ints(gt.INT8), "Y": go_ints(gt.INT8)}),
    "Matrix": st.lists(st.lists(st.floats(), max_size=3), max_size=3),
    "ByInner": st.dictionaries(st.tuples(go_ints(gt.INT), st.text(max_size=2)), st.text(max_size=2),
                               max_size=3).map(
        lambda d: [({"A": a, "B": b}, s) for (a, b), s in d.items()]),
})

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("kind", "gotype", "strategy"), [
    ("AllKinds", ALL_KINDS, all_kinds),
    ("Containers", CONTAINERS, containers),
    ("Node", NODE, nodes),
])
def test_go_reads_what_we_write(go_decoder, kind, gotype, strategy):
    @SETTINGS
    @given(strategy)
    def check(value):
        got = go_decoder(kind, encode(value, gotype, registry=REGISTRY))
        assert "error" not in got, got
        assert from_go(got, gotype) == canonical(value, gotype)

    check()


def test_go_reports_a_stream_it_cannot_read(go_decoder):
    # the decoder answers with an error line, so the tests above would see a Go refusal
    assert "error" in go_decoder("Node", b"\x03\x04\x00\x02")
