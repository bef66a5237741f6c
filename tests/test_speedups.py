"""statserver._speedups against the pure-Python decoder it replaces: the same stats and
the same FrameError for every frame, real, mutated, hand-made or random; the choice of
implementation (``STATSERVER_PURE``)."""

import gc
import os
import struct
import subprocess
import sys
import tracemalloc

import protobuf_decoders
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import read_frames

from statserver.aggregation import aggregator
from statserver.aggregation.windows import RevisionBuckets
from statserver.model import StatMessage
from statserver.sinks import summary
from statserver.wire import FrameError, gobstat, protostat

EXAMPLES = int(os.environ.get("SPEEDUPS_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the sanitizer build is slow; speed is for benchmarks/decode.py
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def outcome(decode, payload, received_at=7):
    """What a decoder makes of a payload, comparable with ==: the stats with their types
    and float reprs (NaN, -0.0), or the exception with its text and context."""
    try:
        stats = decode(payload, received_at)
    except Exception as e:
        return ("raised", type(e), str(e), getattr(e, "format", None),
                getattr(e, "reason", None), e.__cause__, e.__suppress_context__)  # fmt: skip
    assert type(stats) is list
    return ("stats", [(type(s), repr(tuple(s)), [type(v) for v in s]) for s in stats])


def assert_same(payload):
    (_, pure), (_, compiled) = protobuf_decoders.both()
    want = outcome(pure, payload)
    assert outcome(compiled, payload) == want, payload.hex()
    return want


# ---- the wire format, piece by piece ----


def varint(n):
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([byte])
        out += bytes([byte | 0x80])


def tag(field, wire_type):
    return varint(field << 3 | wire_type)


def ld(field, body):
    return tag(field, 2) + varint(len(body)) + body


def double(field, x):
    return tag(field, 1) + struct.pack("<d", x)


def entry(body):
    return ld(1, body)


STAT = ld(1, b"pod") + double(2, 1.5) + tag(7, 0) + varint(5)
GOOD = entry(ld(1, b"ns") + ld(2, b"rev") + ld(3, STAT))

# (name, payload, outcome): "stats" or "error" where every protobuf release agrees,
# None where they differ (both decoders must still agree with each other).
CASES = [
    ("a stat", GOOD, "stats"),
    ("empty frame", b"", "stats"),
    ("entry without stat", entry(ld(1, b"ns")), "stats"),
    ("empty stat", entry(ld(3, b"")), "stats"),
    ("stat sent twice is merged", entry(ld(3, ld(1, b"a") + double(2, 1)) + ld(3, double(3, 2))),
     "stats"),
    ("namespace sent twice: last wins", entry(ld(1, b"a") + ld(1, b"b") + ld(3, b"")), "stats"),
    ("bad UTF-8 later overwritten", entry(ld(1, b"\xff") + ld(1, b"b") + ld(3, b"")), "error"),
    ("pod overlong UTF-8", entry(ld(3, ld(1, b"\xc0\x80"))), "error"),
    ("pod surrogate", entry(ld(3, ld(1, b"\xed\xa0\x80"))), "error"),
    ("pod above U+10FFFF", entry(ld(3, ld(1, b"\xf4\x90\x80\x80"))), "error"),
    ("bad UTF-8 in an entry without stat", entry(ld(1, b"\xff")), "error"),
    ("bad UTF-8 in an unknown field", ld(9, b"\xff") + entry(ld(5, b"\xff") + ld(3, b"")),
     "stats"),
    ("4-byte UTF-8 and NUL", entry(ld(1, "𝄞\0".encode()) + ld(3, b"")), "stats"),
    ("unknown fields everywhere", tag(5, 0) + varint(3) + entry(tag(9, 5) + b"abcd" + ld(
        3, STAT + tag(100, 1) + b"12345678")), "stats"),
    ("messages as a varint", tag(1, 0) + varint(3), "stats"),
    ("messages as fixed64", tag(1, 1) + b"12345678", "stats"),
    ("messages as a group", tag(1, 3) + entry(b"") + tag(1, 4), "stats"),
    ("namespace as a varint", entry(tag(1, 0) + varint(1) + ld(3, b"")), "stats"),
    ("double as a varint", entry(ld(3, tag(2, 0) + varint(1))), "stats"),
    ("double as fixed32", entry(ld(3, tag(2, 5) + b"abcd")), "stats"),
    ("packed doubles", entry(ld(3, ld(2, struct.pack("<dd", 1, 2)))), "stats"),
    ("packed doubles of a bad length", entry(ld(3, ld(2, b"123"))), "stats"),
    ("packed timestamps", entry(ld(3, ld(7, varint(3) + varint(4)))), "stats"),
    ("timestamp as fixed64", entry(ld(3, tag(7, 1) + b"12345678")), "stats"),
    ("stat as a varint", entry(tag(3, 0) + varint(1)), "stats"),
    ("stat as a group", entry(tag(3, 3) + tag(3, 4)), "stats"),
    ("negative timestamp", entry(ld(3, tag(7, 0) + varint(2**64 - 5))), "stats"),
    ("largest timestamp", entry(ld(3, tag(7, 0) + varint(2**63 - 1))), "stats"),
    ("smallest timestamp", entry(ld(3, tag(7, 0) + varint(2**63))), "stats"),
    ("timestamp's 10th byte overflows", entry(ld(3, tag(7, 0) + b"\xff" * 9 + b"\x7f")),
     "stats"),
    ("timestamp of 11 bytes", entry(ld(3, tag(7, 0) + b"\xff" * 10 + b"\x01")), "error"),
    ("timestamp truncated", entry(ld(3, tag(7, 0) + b"\xff")), "error"),
    ("NaN, -0.0 and infinity", entry(ld(3, tag(2, 1) + struct.pack("<Q", 0x7FF8000000000001)
                                        + double(3, -0.0) + double(4, float("inf")))), "stats"),
    ("double truncated", entry(ld(3, tag(2, 1) + b"1234")), "error"),
    ("length missing", b"\x0a", "error"),
    ("length past the end", b"\x0a\x05ab", "error"),
    ("length past the end by one", b"\x0a\x02\x00", "error"),
    ("2 GiB length", b"\x0a" + varint(2**31), "error"),
    ("stat longer than its entry", b"\x0a\x03\x1a\x05\x00", "error"),
    ("namespace longer than its entry", b"\x0a\x02\x0a\x05abcde", "error"),
    ("tag truncated", b"\x0a\x00\x80", "error"),
    ("field number 0", b"\x0a\x00" + tag(0, 0) + varint(0), "error"),
    ("field number 0 in an entry", entry(tag(0, 2) + b"\x00"), "error"),
    ("largest field number", tag(2**29 - 1, 0) + varint(0), "stats"),
    ("field number 2**29", tag(2**29, 0) + varint(0), "error"),
    ("tag of 5 bytes, last 0x0f", b"\x8a\x80\x80\x80\x0f\x00", "stats"),
    ("tag of 5 bytes, last 0x10", b"\x8a\x80\x80\x80\x10\x00", "error"),
    ("tag of 6 bytes", b"\x8a\x80\x80\x80\x80\x00\x00", "error"),
    ("overlong tag", b"\x8a\x00\x00", "stats"),
    ("overlong length of 5 bytes", b"\x0a\x80\x80\x80\x80\x00", "stats"),
    ("overlong length of 6 bytes", b"\x0a\x80\x80\x80\x80\x80\x00", None),
    ("overlong length of 10 bytes", b"\x0a" + b"\x80" * 9 + b"\x00", None),
    ("overlong length of 11 bytes", b"\x0a" + b"\x80" * 10 + b"\x00", "error"),
    ("wire type 6", b"\x0a\x00" + tag(5, 6), "error"),
    ("wire type 7", entry(tag(5, 7)), "error"),
    ("unknown group", tag(5, 3) + tag(6, 0) + varint(1) + tag(5, 4), "stats"),
    ("group ended by another field", tag(5, 3) + tag(6, 4), "error"),
    ("end-group tag alone", tag(5, 4), "error"),
    ("end-group tag in an entry", entry(tag(9, 4)), "error"),
    ("end-group tag in a stat", entry(ld(3, tag(9, 4))), "error"),
    ("group never ended", tag(5, 3), "error"),
    ("group ended after its entry", entry(tag(9, 3)) + tag(9, 4), "error"),
    ("group holding wire type 7", tag(9, 3) + tag(1, 7) + tag(9, 4), "error"),
    ("group holding field number 0", tag(9, 3) + tag(0, 0) + b"\x00" + tag(9, 4), None),
    ("group of field number 0", tag(0, 3) + tag(0, 4), "error"),
    ("100 nested groups", tag(5, 3) * 100 + tag(5, 4) * 100, "stats"),
    ("101 nested groups", tag(5, 3) * 101 + tag(5, 4) * 101, "error"),
    ("98 nested groups in a stat", entry(ld(3, tag(9, 3) * 98 + tag(9, 4) * 98)), "stats"),
    ("99 nested groups in a stat", entry(ld(3, tag(9, 3) * 99 + tag(9, 4) * 99)), "error"),
    ("10,000 nested groups", tag(5, 3) * 10_000, "error"),
    ("unknown varint of 10 bytes", tag(5, 0) + b"\x80" * 9 + b"\x7f", "stats"),
    ("unknown fixed64 truncated", tag(5, 1) + b"123", "error"),
    ("unknown fixed32 truncated", tag(5, 5) + b"12", "error"),
    ("unknown length past the end", tag(5, 2) + b"\x05", "error"),
    ("bad UTF-8, then a bad length", entry(ld(1, b"\xff")) + b"\x80", "error"),
    ("bad UTF-8 then a bad varint in one entry", b"\x0a\x04\x0a\x01\xff\x80", "error"),
    ("three entries", entry(ld(3, b"")) * 3, "stats"),
]


@pytest.mark.parametrize("name, payload, expected", CASES, ids=[c[0] for c in CASES])
def test_edge_cases_decode_as_the_pure_decoder_does(name, payload, expected):
    got = assert_same(payload)
    if expected == "stats":
        assert got[0] == "stats"
    elif expected == "error":
        assert got[0] == "raised" and got[1] is FrameError and got[3] == "protobuf"


def test_strings_and_numbers_come_out_as_sent(protobuf_decoder):
    frame = GOOD + entry(ld(1, "ñs".encode()) + ld(2, b"rev") + ld(3, STAT + double(6, -0.0)))
    first, second = protobuf_decoder(frame, 7)
    assert first == StatMessage("ns", "rev", "pod", 1.5, timestamp=5_000_000_000, received_at=7)
    assert type(first) is StatMessage
    assert second.namespace == "ñs" and str(second.process_uptime) == "-0.0"


# ---- random, mutated and generated frames ----


def real_frames():
    return [f["payload"] for name in ("proto.jsonl", "proto-ts.jsonl") for f in read_frames(name)]


def _mutate(payload, ops):
    data = bytearray(payload)
    for op, position, value in ops:
        at = position % (len(data) + 1)
        if op == "set" and data:
            data[at % len(data)] = value
        elif op == "flip" and data:
            data[at % len(data)] ^= 1 << (value % 8)
        elif op == "insert":
            data[at:at] = bytes([value])
        elif op == "delete":
            del data[at : at + 1 + value % 4]
        elif op == "truncate":
            del data[at:]
        elif op == "repeat":
            data[at:at] = data[at : at + 1 + value % 16]
    return bytes(data)


mutations = st.lists(
    st.tuples(st.sampled_from(["set", "flip", "insert", "delete", "truncate", "repeat"]),
              st.integers(0, 2**16), st.integers(0, 255)),
    min_size=1, max_size=6,
)  # fmt: skip


@FUZZ
@given(st.data(), mutations)
def test_mutated_real_frames_decode_alike(data, ops):
    frame = data.draw(st.sampled_from(real_frames()))
    assert_same(_mutate(frame, ops))


names = st.text(max_size=12)
floats = st.floats(width=64)
stats = st.builds(
    StatMessage, names, names, names, floats, floats, floats, floats, floats,
    st.none() | st.integers(-(2**63), 2**63 - 1).map(lambda s: s * 1_000_000_000),
)  # fmt: skip


@FUZZ
@given(st.lists(stats, max_size=8), st.none() | mutations)
def test_encoded_and_mutated_frames_decode_alike(messages, ops):
    frame = protostat.encode_protobuf(messages)
    assert_same(frame if ops is None else _mutate(frame, ops))


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_decode_alike(payload):
    assert_same(payload)
    assert_same(b"\x0a" + payload)


# A generated WireStatMessages-like tree: the schema's fields and others, every wire
# type, right and wrong lengths, varints of any length, groups, strings of any bytes.
FIELDS = st.sampled_from([0, 1, 1, 1, 2, 3, 3, 4, 5, 6, 7, 7, 8, 15, 16, 2**29 - 1])
strings = st.sampled_from([b"", b"ns", "ñ".encode(), b"\xff", b"\xed\xa0\x80", b"\xc3"])


@st.composite
def varint_bytes(draw):
    value = varint(draw(st.integers(0, 2**64 - 1) | st.integers(0, 300)))
    padding = draw(st.integers(0, 11 - len(value)) if len(value) < 11 else st.just(0))
    if padding:  # an overlong encoding
        value = bytes(b | 0x80 for b in value) + b"\x80" * (padding - 1) + b"\x00"
    return value


def fields(children):
    return st.lists(children, max_size=6).map(b"".join)


@st.composite
def _field(draw, inner):
    number = draw(FIELDS)
    wire_type = draw(st.sampled_from([0, 1, 2, 2, 2, 3, 4, 5, 6, 7]))
    head = tag(number, wire_type)
    if wire_type == 0:
        return head + draw(varint_bytes())
    if wire_type in (1, 5):
        return head + draw(st.binary(min_size=0, max_size=9))
    if wire_type == 2:
        body = draw(strings | inner | st.binary(max_size=16))
        length = len(body) + draw(st.sampled_from([0, 0, 0, 0, 0, 1, -1, 2**31]))
        return head + varint(max(length, 0)) + body
    if wire_type == 3:
        end = number if draw(st.booleans()) else draw(FIELDS)
        return head + draw(inner) + draw(st.just(tag(end, 4)) | st.just(b""))
    return head


generated = st.recursive(st.just(b""), lambda inner: fields(_field(inner)), max_leaves=30)


@FUZZ
@given(generated)
def test_generated_frames_decode_alike(payload):
    assert_same(payload)


# ---- the function's surface ----


def test_one_mebibyte_of_empty_stats():
    frame = entry(ld(3, b"")) * 262_140
    assert len(frame) <= 2**20
    got = assert_same(frame)
    assert len(got[1]) == 262_140


@pytest.mark.parametrize(
    "payload",
    [bytearray(GOOD), memoryview(GOOD), memoryview(b"x" + GOOD)[1:],
     memoryview(GOOD + b"\x00" * (len(GOOD) % 2)).cast("H"), memoryview(GOOD * 2)[::2],
     [b for b in GOOD], 3, "text", None],
    ids=["bytearray", "memoryview", "memoryview slice", "memoryview of shorts",
         "strided memoryview", "list of ints", "int", "str", "None"],
)  # fmt: skip
def test_any_payload_object_as_bytes_takes_it(payload):
    assert_same(payload)


def test_keywords_and_defaults(protobuf_decoder):
    want = protobuf_decoder(GOOD, 9)
    assert protobuf_decoder(GOOD, received_at=9) == want
    assert protobuf_decoder(payload=GOOD, received_at=9) == want
    assert protobuf_decoder(GOOD)[0].received_at is None
    marker = object()
    assert protobuf_decoder(GOOD, marker)[0].received_at is marker
    for bad in [(), (GOOD, 1, 2)]:
        with pytest.raises(TypeError):
            protobuf_decoder(*bad)
    with pytest.raises(TypeError):
        protobuf_decoder(GOOD, sent_at=1)


def test_no_references_or_memory_kept():
    decode = protobuf_decoders.compiled()
    marker = object()
    frames = [GOOD * 10, entry(ld(1, b"ns")) * 10, GOOD + entry(ld(1, b"\xff")), GOOD + b"\x80"]
    for frame in frames:  # warm up
        try:
            decode(frame, marker)
        except FrameError:
            pass
    gc.collect()
    refs = sys.getrefcount(marker), sys.getrefcount(StatMessage)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(2000):
        for frame in frames:
            try:
                decode(frame, marker)
            except FrameError:
                pass
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert (sys.getrefcount(marker), sys.getrefcount(StatMessage)) == refs
    assert grown < 50_000, grown  # 8,000 frames: a leak of one object each is 300 kB+


def test_names_decoded_again_are_one_object_and_never_mixed_up():
    # The compiled decoder keeps the short ASCII strings it decoded lately (a fleet sends
    # the same names every second): each is then one object, its hash computed once.
    from statserver.wire import encode_protobuf

    decode = protobuf_decoders.compiled()
    fleet = [StatMessage("ns", f"rev-{i:02d}", "activator-0", 1.0) for i in range(50)]
    first, again = decode(encode_protobuf(fleet)), decode(encode_protobuf(fleet))
    assert first == again and [s.name for s in first] == [s.name for s in fleet]
    shared = sum(a.name is b.name for a, b in zip(first, again, strict=True))
    assert shared >= 45, f"{shared} of 50 names shared"  # (two may share a slot)
    # names that fill the table many times over, of one length (so that slots collide),
    # long ones (not kept) and others than ASCII (not kept): each comes out as sent
    names = [f"rev-{i:05d}" for i in range(5000)] + ["x" * 65, "r\u00e9v-1", "\u00e9" * 40]
    stats = [StatMessage("ns", name, name) for name in names * 2]
    got = decode(encode_protobuf(stats))
    assert [(s.name, s.pod_name) for s in got] == [(n, n) for n in names * 2]
    assert got == protostat.pure_decode_protobuf(encode_protobuf(stats))


def test_a_frames_seconds_are_each_its_own_and_one_object_while_repeated():
    # A sender stamps a frame's stats with the same second: the compiled decoder makes
    # one int for a run of them (which the compiled aggregator then reads once), and
    # never hands a stat another second's time.
    from twisted.internet.task import Clock

    from statserver.wire import encode_protobuf

    decode = protobuf_decoders.compiled()
    s = NOW // 1_000_000_000
    seconds = [s, s, s, s + 1, s + 1, s, -5, -5, s + 2**31, s, s]
    frame = encode_protobuf([
        StatMessage("ns", "rev", f"pod-{i % 3}", 1.0 + i, 0.5, 2.0, 1.0,
                    timestamp=t * 1_000_000_000) for i, t in enumerate(seconds)])  # fmt: skip
    got = decode(frame, NOW + 3_000_000_000)
    assert [m.timestamp for m in got] == [t * 1_000_000_000 for t in seconds]
    assert got == protostat.pure_decode_protobuf(frame, NOW + 3_000_000_000)
    assert got[0].timestamp is got[1].timestamp is got[2].timestamp
    assert got[3].timestamp is got[4].timestamp and got[6].timestamp is got[7].timestamp
    record = aggregator.compiled_aggregate_record_many() or protobuf_decoders.compiled()
    pure, fast = aggregator.Aggregator(Clock()), aggregator.Aggregator(Clock())
    for batch in (got[:1], got[1:], got):  # the revision first, then the rest, twice
        pure.pure_record_many(batch)
        record(fast, batch, fast.pure_record_many)
        assert _aggregator_state(fast) == _aggregator_state(pure)


def test_whole_counts_are_shared_floats_of_the_same_value():
    # Knative's counts are whole numbers: the compiled decoder shares one float for each
    # of 0.0 to 255.0 (the rest, -0.0 included, are floats of their own).
    from statserver.wire import encode_protobuf

    decode = protobuf_decoders.compiled()
    counts = [0.0, 1.0, 2.0, 17.0, 255.0, 256.0, 1.5, 254.9999, -1.0, -0.0, 1e300, 2.0**40]
    frame = encode_protobuf([StatMessage("ns", "rev", "pod", 1.0, 0.0, c, c) for c in counts])
    first, again = decode(frame), decode(frame)
    pure = protostat.pure_decode_protobuf(frame)
    assert [repr(s.request_count) for s in first] == [repr(s.request_count) for s in pure]
    assert [repr(s.request_count) for s in first] == [repr(c) for c in counts]
    shared = [a.request_count is b.request_count for a, b in zip(first, again, strict=True)]
    assert shared == [c in (0.0, 1.0, 2.0, 17.0, 255.0) and repr(c) != "-0.0" for c in counts]


def _implementation(cwd, **env):
    code = "from statserver.wire import IMPLEMENTATION; print(IMPLEMENTATION)"
    environ = {k: v for k, v in os.environ.items() if k != "STATSERVER_PURE"}
    # not from the repository's root: "python -c" would import the source tree's
    # statserver (no built extension there) instead of the installed one
    result = subprocess.run([sys.executable, "-c", code], env=dict(environ, **env),
                            cwd=cwd,
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return result.stdout.strip()


def test_statserver_pure_1_forces_the_pure_decoder(tmp_path):
    protobuf_decoders.compiled()  # built here
    assert _implementation(tmp_path) == "compiled"
    assert _implementation(tmp_path, STATSERVER_PURE="1") == "pure"
    assert _implementation(tmp_path, STATSERVER_PURE="0") == "compiled"


# ---- the summary's set updates ----

pool = st.sampled_from(["", "a", "b", "ns/x", "ñ"])
summary_stats = st.lists(st.builds(StatMessage, pool, pool, pool), max_size=30)


@FUZZ
@given(summary_stats, st.sets(pool), st.sets(st.tuples(pool, pool)), st.booleans())
def test_summary_sets_grow_alike(stats, pods, revisions, as_tuple):
    compiled = summary.compiled_add_stats() or protobuf_decoders.compiled()
    # The decoder shares equal strings between consecutive stats: so do some here.
    shared = [stats[0]] * 3 + stats if stats else stats
    batch = tuple(shared) if as_tuple else shared
    want_pods, want_revisions = set(pods), set(revisions)
    summary.pure_add_stats(batch, want_pods, want_revisions)
    compiled(batch, pods, revisions)
    assert (pods, revisions) == (want_pods, want_revisions)


def test_summary_sets_of_decoded_frames():
    compiled = summary.compiled_add_stats() or protobuf_decoders.compiled()
    stats = protostat.pure_decode_protobuf(real_frames()[0]) + protobuf_decoders.compiled()(
        real_frames()[1] * 3)
    pure_sets, compiled_sets = (set(), set()), (set(), set())
    summary.pure_add_stats(stats, *pure_sets)
    compiled(stats, *compiled_sets)
    assert compiled_sets == pure_sets and len(pure_sets[1]) > 1
    with pytest.raises(TypeError):
        compiled([object()], set(), set())


# ---- the aggregator's record_many ----

NOW = 1_700_000_000 * 1_000_000_000
steps = st.one_of(  # ns from one stat to the next: same second, next ones, gaps, late
    st.integers(0, 999_999_999), st.integers(1, 3).map(lambda s: s * 1_000_000_000),
    st.integers(2, 200).map(lambda s: s * 1_000_000_000 + 17),
    st.integers(-30, -1).map(lambda s: s * 1_000_000_000))
values = st.sampled_from([0.0, -0.0, 1.0, 0.1, 2.5, -0.7, 1e16, float("nan"), float("inf")]) | floats
aggregated = st.lists(st.tuples(
    steps, st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 90), values, values, values,
    values, st.sampled_from(["at", "at", "at", "no time", "received only", "at only"]),
    st.sampled_from([5, 5, 4_999_999_999, 5_000_000_001, -6_000_000_000, 2**62])),
    max_size=120)  # fmt: skip


def _aggregator_state(aggregator):
    # The one test reading private state, on purpose: the compiled record_many writes the
    # aggregator's per-revision buckets directly, so its contract is that state, bucket
    # by bucket, not only the averages read from it.
    revisions = {
        key: (repr([getattr(r.buckets, a) for a in RevisionBuckets.__slots__]), r.pods,
              r.pods_limit, r.last_stat_time, r.last_received)
        for key, r in aggregator._revisions.items()
    }  # fmt: skip
    return (revisions, aggregator.refused_stats, aggregator.refused_revisions,
            aggregator.skewed_ahead, aggregator.skewed_behind)


#: (stable window s, panic %): the defaults, a panic window of 1 s (7 x 1 %), others
WINDOWS = [(60, 10.0), (60, 100.0), (6, 20.0), (6, 100.0), (7, 1.0), (3600, 10.0)]


@FUZZ
@given(aggregated, st.lists(st.integers(1, 40), min_size=1, max_size=8),
       st.sampled_from([aggregator.LINEAR, aggregator.WEIGHTED_EXPONENTIAL]), st.integers(1, 5),
       st.sampled_from(WINDOWS))
def test_aggregators_record_alike(ops, batch_sizes, aggregation, max_revisions, windows):  # fmt: skip
    compiled = aggregator.compiled_aggregate_record_many() or protobuf_decoders.compiled()
    from twisted.internet.task import Clock

    stable, panic_percentage = windows
    pure, fast = (aggregator.Aggregator(Clock(), aggregation=aggregation,
                                        max_revisions=max_revisions, stable_window=stable,
                                        panic_window_percentage=panic_percentage)
                  for _ in range(2))
    now, stats = NOW, []
    for step, name, pod, c, pc, r, pr, times, late in ops:
        now += step
        at = None if times in ("no time", "received only") else now
        received = None if times in ("no time", "at only") else now + late
        stats.append(StatMessage("ns", name, f"pod-{pod}", c, pc, r, pr, timestamp=at,
                                 received_at=received))  # fmt: skip
    i = 0
    for size in batch_sizes * (len(stats) // sum(batch_sizes) + 1):
        batch = stats[i : i + size]
        pure.pure_record_many(batch)
        compiled(fast, batch, fast.pure_record_many)
        i += size
        assert _aggregator_state(fast) == _aggregator_state(pure)
        if i >= len(stats):
            break


def test_a_total_held_elsewhere_is_never_changed_under_its_holder():
    # The compiled record_many adds to a bucket's floats where they are when nothing
    # else holds them; one that something else holds is replaced, as in Python.
    compiled = aggregator.compiled_aggregate_record_many() or protobuf_decoders.compiled()
    from twisted.internet.task import Clock

    agg = aggregator.Aggregator(Clock())
    stat = StatMessage("ns", "a", "pod", 1.5, 0.0, 2.0, 0.0, timestamp=NOW, received_at=NOW)
    compiled(agg, [stat, stat], agg.pure_record_many)
    buckets = agg._revisions[("ns", "a")].buckets
    held = [buckets.stable_concurrency_total, buckets.panic_rps_total,
            max(buckets.concurrency), max(buckets.rps)]
    assert held == [3.0, 4.0, 3.0, 4.0]
    compiled(agg, [stat], agg.pure_record_many)
    assert held == [3.0, 4.0, 3.0, 4.0]
    assert [buckets.stable_concurrency_total, buckets.panic_rps_total, max(buckets.concurrency),
            max(buckets.rps)] == [4.5, 6.0, 4.5, 6.0]


# ---- reading a revision's linear averages ----


@FUZZ
@given(aggregated, st.lists(st.integers(-3, 200).map(lambda s: s * 1_000_000_000 + 5),
                            min_size=1, max_size=6),
       st.sampled_from([aggregator.LINEAR, aggregator.WEIGHTED_EXPONENTIAL]),
       st.sampled_from(WINDOWS))
def test_averages_read_alike(ops, reads, aggregation, windows):
    compiled = aggregator.compiled_linear_averages() or protobuf_decoders.compiled()
    from twisted.internet.task import Clock

    stable, panic_percentage = windows
    agg = aggregator.Aggregator(Clock(), aggregation=aggregation, max_revisions=5,
                                stable_window=stable, panic_window_percentage=panic_percentage)
    now = NOW
    for step, name, pod, c, pc, r, pr, _, _ in ops:
        now += step
        agg.pure_record_many([StatMessage("ns", name, f"pod-{pod}", c, pc, r, pr,
                                          timestamp=now, received_at=now)])
    for later in reads:
        for r in agg._revisions.values():  # (each revision's buckets, as _averages reads)
            got = compiled(r.buckets, now + later, aggregator._SCALE)
            want = r.buckets.averages(now + later)
            if aggregation == aggregator.WEIGHTED_EXPONENTIAL:
                assert got is None  # the pure method's to answer
            else:
                assert got is not None and repr(got) == repr(want)


# ---- gob StatMessage frames (decode_gob_stat behind the cached type definitions) ----

GOB_ERAS = ("v02", "v06", "v07", "v08", "v10", "v12")


def gob_decoders():
    """(pure, compiled) gob frame decoders; the compiled one with its own layout cache."""
    compiled = gobstat.compiled_decode_gob()
    assert compiled is not None, "statserver._speedups is not built"
    return gobstat.pure_decode_gob, compiled


def gob_outcome(decode, payload):
    try:
        stat = decode(payload, 7)
    except FrameError as e:
        return ("error", str(e))
    return ("stat", type(stat).__name__, repr(tuple(stat)), [type(v) for v in stat])


def real_gob_frames(eras=GOB_ERAS):
    return [f["payload"] for era in eras for f in read_frames(f"{era}.jsonl")]


def test_every_gob_eras_real_frames_decode_alike_and_float_counts_take_the_compiled_path():
    pure, compiled = gob_decoders()
    for payload in real_gob_frames():
        assert gob_outcome(compiled, payload) == gob_outcome(pure, payload), payload.hex()
    fast = gobstat.compiled("decode_gob_stat")
    for payload in real_gob_frames(("v07", "v08", "v10", "v12")):  # (int32 counts: pure)
        layout = gobstat._layout(payload, gobstat.definitions_length(payload))
        assert fast(payload, *layout, 7) is not None, payload.hex()


gob_names = st.text(alphabet=st.sampled_from("ab/-ñ\udcff"), max_size=8)
gob_stats = st.builds(
    StatMessage, gob_names, gob_names, gob_names,
    st.sampled_from([0.0, -0.0, 1.0, 2.5, float("nan"), float("inf")]) | floats,
    floats, st.sampled_from([0.0, 3.0, 7.0, -1.0, 2.0**31]), floats, floats,
    timestamp=st.none() | st.sampled_from([0, -62135596800 * 1_000_000_000, 1, 2**63 - 1,
                                           9_223_372_036_999_999_999, -(2**63), 2**70])
    | st.integers(-(2**62), 2**62),
    timestamp_offset=st.none() | st.sampled_from([0, 3600, -60, 19800, -43200]))


@FUZZ
@given(gob_stats, st.sampled_from(GOB_ERAS), st.none() | mutations)
def test_encoded_and_mutated_gob_frames_decode_alike(message, era, ops):
    try:
        frame = gobstat.encode_stat_frame(message, era)
    except Exception:  # not encodable in that era (an int32 count out of range, ...)
        return
    pure, compiled = gob_decoders()
    payload = frame if ops is None else _mutate(frame, ops)
    assert gob_outcome(compiled, payload) == gob_outcome(pure, payload), payload.hex()


@FUZZ
@given(st.data(), mutations)
def test_mutated_real_gob_frames_decode_alike(data, ops):
    payload = _mutate(data.draw(st.sampled_from(real_gob_frames())), ops)
    pure, compiled = gob_decoders()
    assert gob_outcome(compiled, payload) == gob_outcome(pure, payload), payload.hex()


@pytest.mark.parametrize("nanos", [999_999_999, 1_000_000_000, -1, 2**31 - 1])
@pytest.mark.parametrize("version", [1, 2])
def test_gob_times_out_of_range_are_the_pure_decoders_to_refuse(nanos, version):
    frame = real_gob_frames(("v10",))[0]
    start = gobstat.definitions_length(frame)  # then the value: a one-byte length, ...
    at = frame.index(b"\x0f\x01", start)  # ... and the time: 15 bytes, version 1
    time = (bytes([version]) + frame[at + 2:at + 10] + nanos.to_bytes(4, "big", signed=True)
            + b"\xff\xff" + b"\x00" * (version == 2))
    value = frame[start + 1:at] + bytes([len(time)]) + time + frame[at + 16:]
    payload = frame[:start] + bytes([len(value)]) + value
    pure, compiled = gob_decoders()
    want = gob_outcome(pure, payload)
    assert want[0] == ("stat" if nanos == 999_999_999 else "error"), want
    assert gob_outcome(compiled, payload) == want
