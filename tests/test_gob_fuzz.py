"""Property tests of the gob decoder: random Go types and values round-trip through
hand-assembled streams; random bytes, mutated vectors and mutated Knative frames give only
values or GobError, quickly, and the same answer on every path (interpreted, compiled, a
sender's first, second and warm frame), decoded generically and typed into the server's
StatMessage target."""

import os
import tracemalloc

from gobpaths import assert_paths_agree
from gobwire import f, go_time, i, msg, s, single, u, value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import GOB_ERAS, gob_vector_files, read_frames, read_jsonl

from statserver.gob import GobError, GoInterface, GoTime, decode, decode_all
from statserver.gob.decoder import clear_cache
from statserver.model import StatMessage
from statserver.wire.gobstat import _StatMessage, encode_stat_frame

EXAMPLES = int(os.environ.get("GOB_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=1000,  # ms per example: every input must decode or fail quickly
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- random Go types ------------------------------------------------------------------

SCALARS = {"bool": 1, "int": 2, "uint": 3, "float": 4, "bytes": 5, "string": 6, "complex": 7}


class GoType:
    def __init__(self, kind, elem=None, key=None, length=0, fields=(), concrete=()):
        self.kind, self.elem, self.key, self.length = kind, elem, key, length
        self.fields, self.concrete = fields, concrete
        self.id = SCALARS.get(kind, 8 if kind == "interface" else None)


scalar_types = st.sampled_from(sorted(SCALARS)).map(GoType)
key_types = st.sampled_from(["bool", "int", "uint", "string"]).map(GoType)
time_type = st.just(None).map(lambda _: GoType("time"))


def _containers(children):
    names = st.lists(st.from_regex(r"[A-Z][a-z0-9]{0,3}", fullmatch=True), min_size=0, max_size=4, unique=True)
    return st.one_of(
        children.map(lambda t: GoType("slice", t)),
        st.tuples(children, st.integers(0, 3)).map(lambda a: GoType("array", a[0], length=a[1])),
        st.tuples(key_types, children).map(lambda a: GoType("map", a[1], key=a[0])),
        names.flatmap(
            lambda ns: st.lists(children, min_size=len(ns), max_size=len(ns)).map(
                lambda ts: GoType("struct", fields=tuple(zip(ns, ts, strict=True)))
            )
        ),
        st.lists(children.filter(lambda t: t.kind != "interface"), min_size=1, max_size=2).map(
            lambda ts: GoType("interface", concrete=tuple(ts))  # Go registers concrete types only
        ),
    )


go_types = st.recursive(st.one_of(scalar_types, time_type), _containers, max_leaves=8)


def assign_ids(t, next_id, defs):
    """Give every defined type an id (from next_id up) and collect its definition."""
    if t.kind in SCALARS:
        return next_id
    if t.kind == "interface":
        for c in t.concrete:
            next_id = assign_ids(c, next_id, defs)
        return next_id
    t.id = next_id
    next_id += 1
    if t.kind == "time":
        body = u(5) + u(1) + u(1) + s("Time") + u(1) + i(t.id) + u(0) + u(0) + u(0)
    elif t.kind == "struct":
        for _, ft in t.fields:
            next_id = assign_ids(ft, next_id, defs)
        body = u(3) + u(1) + u(1) + s(f"S{t.id}") + u(1) + i(t.id) + u(0) + u(1) + u(len(t.fields))
        for name, ft in t.fields:
            body += u(1) + s(name) + u(1) + i(ft.id) + u(0)
        body += u(0) + u(0)
    else:
        next_id = assign_ids(t.elem, next_id, defs)
        common = u(1) + u(2) + i(t.id) + u(0)
        if t.kind == "slice":
            body = u(2) + common + u(1) + i(t.elem.id) + u(0) + u(0)
        elif t.kind == "array":
            body = u(1) + common + u(1) + i(t.elem.id) + u(1) + i(t.length) + u(0) + u(0)
        else:
            next_id = assign_ids(t.key, next_id, defs)
            body = u(4) + common + u(1) + i(t.key.id) + u(1) + i(t.elem.id) + u(0) + u(0)
    defs.append(msg(i(-t.id) + body))
    return next_id


# --- random values of those types, with their generic decoding --------------------------

_floats = st.floats(allow_nan=False)


def values_of(t):
    k = t.kind
    if k == "bool":
        return st.booleans()
    if k == "int":
        return st.integers(-(2**63), 2**63 - 1)
    if k == "uint":
        return st.integers(0, 2**64 - 1)
    if k == "float":
        return _floats
    if k == "complex":
        return st.builds(complex, _floats, _floats)
    if k == "string":
        return st.text(max_size=8)
    if k == "bytes":
        return st.binary(max_size=8)
    if k == "time":
        return st.builds(
            GoTime,
            st.integers(-(2**40), 2**40),
            st.integers(0, 999_999_999),
            st.one_of(st.none(), st.integers(-14 * 60, 14 * 60).filter(lambda m: m != -1).map(lambda m: m * 60)),  # Go reserves -1 for UTC
        )
    if k == "slice":
        return st.lists(values_of(t.elem), max_size=3)
    if k == "array":
        return st.lists(values_of(t.elem), min_size=t.length, max_size=t.length)
    if k == "map":
        return st.dictionaries(values_of(t.key), values_of(t.elem), max_size=3)
    if k == "struct":
        return st.fixed_dictionaries({name: values_of(ft) for name, ft in t.fields})
    return st.one_of(
        st.none(),
        st.sampled_from(range(len(t.concrete))).flatmap(
            lambda n: values_of(t.concrete[n]).map(lambda v: GoInterface(f"main.C{n}", v))
        ),
    )


def zero(t):
    k = t.kind
    if k in SCALARS:
        return {"bool": False, "string": "", "bytes": b"", "complex": 0j}.get(k, 0)
    return {
        "time": GoTime(),
        "slice": [],
        "map": {},
        "interface": None,
        "array": [zero(t.elem) for _ in range(t.length)] if k == "array" else None,
        "struct": {n: zero(ft) for n, ft in t.fields} if k == "struct" else None,
    }[k]


def encode(t, v):
    """The value in gob's field/element form (zero struct fields left out, as Go does)."""
    k = t.kind
    if k == "bool":
        return u(int(v))
    if k == "int":
        return i(v)
    if k in ("uint",):
        return u(v)
    if k == "float":
        return f(v)
    if k == "complex":
        return f(v.real) + f(v.imag)
    if k in ("string", "bytes"):
        return s(v)
    if k == "time":
        return s(go_time(v.seconds, v.nanos, v.offset))
    if k in ("slice", "array"):
        return u(len(v)) + b"".join(encode(t.elem, x) for x in v)
    if k == "map":
        return u(len(v)) + b"".join(encode(t.key, a) + encode(t.elem, b) for a, b in v.items())
    if k == "struct":
        out, last = b"", -1
        for n, (name, ft) in enumerate(t.fields):
            if v[name] != zero(ft) or ft.kind == "struct":
                out += u(n - last) + encode(ft, v[name])
                last = n
        return out + u(0)
    if v is None:
        return u(0)
    c = t.concrete[int(v.name[len("main.C") :])]
    body = encode(c, v.value) if c.kind == "struct" else u(0) + encode(c, v.value)
    return s(v.name) + i(c.id) + u(len(body)) + body


@FUZZ
@given(go_types.flatmap(lambda t: st.tuples(st.just(t), values_of(t))), st.integers(64, 5000))
def test_round_trip(typed, first_id):
    t, v = typed
    defs = []
    assign_ids(t, first_id, defs)
    body = encode(t, v)
    stream = b"".join(defs) + (value(t.id, body) if t.kind == "struct" else single(t.id, body))
    assert decode(stream) == v
    assert assert_paths_agree(stream)[0] == "ok"


# --- hostile input ----------------------------------------------------------------------


def _outcome(data):
    try:
        return ("ok", decode_all(data))
    except GobError as exc:
        return ("error", str(exc))


def _vectors():
    return [bytes.fromhex(vec["gob"]) for path in gob_vector_files() for vec in read_jsonl(path)]


def _stat_frames():
    return [frame["payload"] for era in GOB_ERAS for frame in read_frames(f"{era}.jsonl")[:5]]


VECTOR_STREAMS = _vectors()
STAT_FRAMES = _stat_frames()


@st.composite
def mutated(draw, seeds=VECTOR_STREAMS):
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xF8, 0xFE, 0xFF]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=9))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_give_values_or_gob_error(data):
    _outcome(data)


def _same(a, b):
    return a == b or repr(a) == repr(b)  # repr: NaN != NaN


@FUZZ
@given(mutated())
def test_mutated_vectors_same_answer_on_every_path(data):
    assert_paths_agree(data)
    assert_paths_agree(data, _StatMessage)


@FUZZ
@given(st.binary(max_size=256).map(lambda tail: VECTOR_STREAMS[len(tail) % len(VECTOR_STREAMS)] + tail))
def test_vectors_with_trailing_garbage_same_answer_on_every_path(data):
    assert_paths_agree(data)


@FUZZ
@given(mutated(STAT_FRAMES))
def test_mutated_stat_frames_same_typed_answer_on_every_path(data):
    # The server's own decoding: a frame of any gob era into its StatMessage target.
    assert_paths_agree(data, _StatMessage)
    assert_paths_agree(data)


stat_messages = st.builds(
    StatMessage,
    namespace=st.text(max_size=6),
    name=st.text(max_size=6),
    pod_name=st.text(max_size=6),
    average_concurrent_requests=st.floats(),
    average_proxied_concurrent_requests=st.floats(),
    request_count=st.integers(-(2**31), 2**31 - 1).map(float),
    proxied_request_count=st.integers(-(2**31), 2**31 - 1).map(float),
    process_uptime=st.floats(),
    timestamp=st.one_of(st.none(), st.integers(-(2**62), 2**62)),
    received_at=st.none(),
    timestamp_offset=st.one_of(st.none(), st.integers(-14 * 60, 14 * 60).filter(lambda m: m != -1).map(lambda m: m * 60)),
)


@FUZZ
@given(st.lists(stat_messages, min_size=1, max_size=3), st.sampled_from(GOB_ERAS))
def test_encoded_stat_frames_same_typed_answer_on_every_path(messages, era):
    # A sender's frames, one stream each, as the server meets them in turn.
    for m in messages:
        frame = encode_stat_frame(m, era)
        kind, _ = assert_paths_agree(frame, _StatMessage)
        assert kind == "ok"


@settings(FUZZ, max_examples=max(EXAMPLES // 10, 20))
@given(st.one_of(mutated(), st.binary(max_size=512)))
def test_memory_stays_bounded(data):
    clear_cache()
    tracemalloc.start()
    try:
        _outcome(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000 + 200 * len(data)


@FUZZ
@given(st.lists(st.one_of(mutated(), st.sampled_from(VECTOR_STREAMS)), min_size=2, max_size=5))
def test_streams_sharing_the_cache_decode_as_alone(streams):
    alone = []
    for data in streams:
        clear_cache()
        alone.append(_outcome(data))
    clear_cache()
    for _ in range(3):  # interpreted, then compiled, then warm: all in one shared cache
        for data, expected in zip(streams, alone, strict=True):
            assert _same(_outcome(data), expected)
