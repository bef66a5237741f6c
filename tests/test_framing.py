"""Whole client data messages skip autobahn's parser (statserver/server/framing.py). The
split is the same in C and in Python; a connection delivers the same messages, keeps the
same traffic counts and closes the same way as through autobahn's own parser, however
the reads cut the stream (a message cut by a read's end is held for the next)."""

import os
import random

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from protobuf_decoders import compiled
from stats import run
from twisted.internet import reactor
from wsclient import JSON_FRAME, bounded, client_frame, connect, port_of, start_server, until

from statserver.server import framing, protocol
from statserver.server.protocol import FAST_HOLD_MAX
from statserver.wire import encode_protobuf
from statserver.wire.gobstat import encode_stat_frame

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


def frame(opcode, payload, *, mask=None, **header):
    """``client_frame`` with a fresh random mask unless one is given (``b""``: none)."""
    return client_frame(opcode, payload, os.urandom(4) if mask is None else mask, **header)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 4096, 65535, 65536, 70000])
def test_whole_frames_come_out_unmasked_with_their_ends(split, size):
    payload = os.urandom(size)
    wire = frame(BINARY, payload) + frame(TEXT, b"hello") + frame(BINARY, b"")
    first = len(frame(BINARY, payload))
    assert split(wire, 0, 0) == ([
        (payload, True, first, 1), (b"hello", False, first + 11, 1), (b"", True, first + 17, 1)
    ], False)


def gorilla(opcode, payload, size=4096):
    """A message as gorilla/websocket sends one longer than its write buffer: frames of
    ``size`` bytes, continuations after the first, the last one final."""
    parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    return b"".join(frame(opcode if i == 0 else 0, part, fin=i == len(parts) - 1)
                    for i, part in enumerate(parts))


@pytest.mark.parametrize("size", [1, 4096, 4097, 20000, 70000])
def test_a_fragmented_message_comes_out_joined(split, size):
    payload = os.urandom(size)
    wire = gorilla(BINARY, payload) + frame(TEXT, b"a") + gorilla(TEXT, b"bcd", size=1)
    first = len(gorilla(BINARY, payload))
    assert split(wire, 4096, max(size, 3)) == ([
        (payload, True, first, -(-size // 4096)), (b"a", False, first + 7, 1),
        (b"bcd", False, len(wire), 3),
    ], False)


def test_empty_fragments_count_as_frames(split):
    wire = frame(BINARY, b"", fin=False) + frame(0, b"", fin=False) + frame(0, b"x")
    assert split(wire, 0, 0) == ([(b"x", True, len(wire), 3)], False)


STOPS = {
    "ping": frame(PING, b"x"),  # control frames are autobahn's
    "close": frame(CLOSE, b"\x03\xe8"),
    "fragment, then a new message": frame(BINARY, b"part", fin=False),
    "continuation": frame(0, b"more"),
    "ping between fragments": frame(BINARY, b"a", fin=False) + frame(PING, b"") + frame(0, b"b"),
    "fragment with an extension bit": frame(TEXT, b"a", fin=False) + frame(0, b"b", rsv=4),
    "unmasked fragment": frame(TEXT, b"a", fin=False) + frame(0, b"b", mask=b""),
    "fragments over max_message": frame(BINARY, b"x" * 60, fin=False) + frame(0, b"x" * 41),
    "extension bit": frame(BINARY, b"x", rsv=4),
    "unmasked": frame(BINARY, b"x", mask=b""),  # a client must mask
    "16-bit length under 126": frame(BINARY, b"x" * 10, length_form=126),  # shortest form only
    "64-bit length under 65536": frame(BINARY, b"x" * 200, length_form=127),
    "reserved opcode": frame(3, b"x"),
    "over max_frame": frame(BINARY, b"x" * 101),
    "length over 2**63": b"\x82\xff" + (1 << 63).to_bytes(8, "big") + b"mask" + b"x" * 20,
}
CUT_SHORT = {
    "payload": frame(BINARY, b"truncated")[:-1],
    "16-bit length": frame(BINARY, b"x" * 300)[:3],
    "64-bit length": frame(BINARY, b"x" * 70000)[:9],
    "mask": frame(BINARY, b"x")[:5],
    "second byte": b"\x82",
    "a message's last fragment": frame(BINARY, b"ab", fin=False),
    "the next fragment's header": frame(BINARY, b"ab", fin=False) + b"\x80",
    "the next fragment's payload": frame(BINARY, b"ab", fin=False) + frame(0, b"cd")[:-1],
}


@pytest.mark.parametrize("stop", STOPS.values(), ids=STOPS.keys())
def test_splitting_stops_at_anything_autobahn_must_judge(split, stop):
    one = frame(BINARY, b"stat")
    assert split(one + stop + one, 100, 100) == ([(b"stat", True, len(one), 1)], False)
    assert split(stop + one, 100, 100) == ([], False)


@pytest.mark.parametrize("cut", CUT_SHORT.values(), ids=CUT_SHORT.keys())
def test_splitting_stops_at_a_message_cut_short_and_says_so(split, cut):
    one = frame(BINARY, b"stat")
    assert split(one + cut, 0, 0) == ([(b"stat", True, len(one), 1)], True)
    assert split(cut, 0, 0) == ([], True)


def test_a_payload_at_the_limits_passes(split):
    wire = frame(BINARY, b"x" * 100)
    assert split(wire, 100, 100) == ([(b"x" * 100, True, len(wire), 1)], False)
    wire = frame(BINARY, b"x" * 60, fin=False) + frame(0, b"x" * 40)
    assert split(wire, 60, 100) == ([(b"x" * 100, True, len(wire), 2)], False)
    assert split(wire, 59, 100) == ([], False)


def frames_stream():
    """Bytes made of frames of every kind (valid or not), or mutated, or random."""
    one = st.builds(
        frame,
        st.sampled_from([0, TEXT, BINARY, BINARY, 3, CLOSE, PING]),
        st.binary(max_size=300) | st.sampled_from([b"y" * 126, b"z" * 65536]),
        fin=st.booleans() | st.just(True),
        rsv=st.sampled_from([0, 0, 0, 1, 4]),
        mask=st.sampled_from([None, None, b""]) | st.binary(min_size=4, max_size=4),
        length_form=st.sampled_from([None, None, 0, 126, 127]),
    )
    stream = st.lists(one, max_size=5).map(b"".join)
    return stream | st.binary(max_size=64) | st.tuples(stream, st.integers(0, 1 << 20)).map(
        lambda t: t[0][: t[1] % (len(t[0]) + 1)]
    )


LIMITS = st.sampled_from([0, 0, 1, 100, 300, 65536, 1 << 20])


@given(data=frames_stream(), max_frame=LIMITS, max_message=LIMITS)
@settings(max_examples=int(os.environ.get("SPEEDUPS_FUZZ_EXAMPLES", "300")))
def test_compiled_split_is_the_pure_one(data, max_frame, max_message):
    impl = framing.compiled_split_frames() or compiled()
    want = framing.pure_split_frames(data, max_frame, max_message)
    got = impl(data, max_frame, max_message)
    assert got == want
    assert type(got[1]) is bool
    assert [tuple(map(type, m)) for m in got[0]] == [tuple(map(type, m)) for m in want[0]]


# ---- a connection: the fast path against autobahn's parser ----

PROTOBUF = encode_protobuf(run(3, pod="p", received_at=None))
GOB = encode_stat_frame(run(1, pod="p", received_at=None)[0])
BIG = os.urandom(70_000)  # a bad frame (counted), over 65,535 bytes
ACTIVATOR = encode_protobuf(run(150, pod="activator-0", received_at=None))  # over 8 KiB
HUGE = os.urandom(FAST_HOLD_MAX + 5000)

# (name, frames, the messages the server must be handed, max_message_size)
SCENARIOS = [
    ("one stat", [frame(BINARY, GOB)], [(GOB, True)], None),
    ("every format in a read", [frame(BINARY, PROTOBUF), frame(TEXT, JSON_FRAME.encode()),
                                frame(BINARY, GOB)],
     [(PROTOBUF, True), (JSON_FRAME.encode(), False), (GOB, True)], None),
    ("empty frames", [frame(BINARY, b""), frame(TEXT, b"")], [(b"", True), (b"", False)], None),
    ("every length form", [frame(BINARY, b"a" * 125), frame(BINARY, b"b" * 126),
                           frame(BINARY, BIG)],
     [(b"a" * 125, True), (b"b" * 126, True), (BIG, True)], None),
    ("a ping and a pong between", [frame(BINARY, GOB), frame(PING, b"hi"),
                                   frame(PONG, b"?"), frame(BINARY, PROTOBUF)],
     [(GOB, True), (PROTOBUF, True)], None),
    ("a fragmented message", [frame(BINARY, GOB[:5], fin=False), frame(0, GOB[5:]),
                              frame(BINARY, PROTOBUF)], [(GOB, True), (PROTOBUF, True)], None),
    ("an activator's messages in gorilla's 4 KiB frames",
     [gorilla(BINARY, ACTIVATOR), frame(BINARY, GOB), gorilla(BINARY, ACTIVATOR)],
     [(ACTIVATOR, True), (GOB, True), (ACTIVATOR, True)], None),
    ("a ping between fragments", [frame(TEXT, b"{", fin=False), frame(PING, b"hi"),
                                  frame(0, JSON_FRAME.encode()[1:]), frame(BINARY, GOB)],
     [(JSON_FRAME.encode(), False), (GOB, True)], None),
    ("a ping last", [frame(BINARY, GOB), frame(PING, b"hi")], [(GOB, True)], None),
    ("fragments over --max-message-size", [frame(BINARY, GOB), gorilla(BINARY, b"x" * 2000, 600),
                                           frame(BINARY, GOB)], [(GOB, True)], 1000),
    ("a message longer than the fast path holds", [frame(BINARY, GOB), gorilla(BINARY, HUGE),
                                                   frame(BINARY, GOB)],
     [(GOB, True), (HUGE, True), (GOB, True)], None),
    ("data after the client's close", [frame(BINARY, GOB), frame(CLOSE, b"\x03\xe8bye"),
                                       frame(BINARY, PROTOBUF)], [(GOB, True)], None),
    ("over --max-message-size", [frame(BINARY, GOB), frame(BINARY, b"x" * 2000),
                                 frame(BINARY, GOB)], [(GOB, True)], 1000),
    ("unmasked", [frame(BINARY, GOB), frame(BINARY, GOB, mask=b""), frame(BINARY, GOB)],
     [(GOB, True)], None),
    ("a long form for a short length", [frame(BINARY, GOB), frame(BINARY, b"x", length_form=126)],
     [(GOB, True)], None),
    ("an extension bit", [frame(BINARY, GOB), frame(BINARY, GOB, rsv=4)], [(GOB, True)], None),
    ("a reserved opcode", [frame(BINARY, GOB), frame(3, GOB)], [(GOB, True)], None),
    ("a continuation out of place", [frame(BINARY, GOB), frame(0, GOB)], [(GOB, True)], None),
    # RFC 6455 lets a peer send until it has read our close: those are stats too
    ("the server closing after the first", [frame(BINARY, GOB), frame(BINARY, PROTOBUF),
                                            frame(TEXT, JSON_FRAME.encode())],
     [(GOB, True), (PROTOBUF, True), (JSON_FRAME.encode(), False)], None),
    ("the server closing, then a cut message", [frame(BINARY, GOB), frame(BINARY, PROTOBUF),
                                                frame(BINARY, GOB)[:-3]],
     [(GOB, True), (PROTOBUF, True)], None),
]
CLOSE_AFTER = {"the server closing after the first": 1, "the server closing, then a cut message": 1}


def chunkings(wire, frames, seed):
    """Ways a kernel could hand ``wire`` over: at once, at every frame boundary and one
    byte either side of it, byte by byte (when short), and at random cuts."""
    yield [wire]
    ends, at = [], 0
    for f in frames:
        at += len(f)
        ends.append(at)
    for shift in (-1, 0, 1):
        cuts = sorted({0, len(wire), *(min(max(e + shift, 0), len(wire)) for e in ends)})
        yield [wire[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    if len(wire) < 400:
        yield [wire[i:i + 1] for i in range(len(wire))]
    rnd = random.Random(seed)
    for _ in range(3):
        cuts = sorted({0, len(wire), *(rnd.randrange(len(wire) + 1) for _ in range(4))})
        yield [wire[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def feed(conn, chunks, fast, close_after=None):
    """Hand ``chunks`` to a server connection as reads; what autobahn and the server
    would show of it afterwards. ``close_after``: the server starts its close handshake
    (as when it shuts down) once it has that many messages."""
    conn._fast_frames = conn._fast_frames and fast
    messages = []
    deliver = conn.onMessage

    def record(payload, is_binary):
        messages.append((payload, is_binary))
        deliver(payload, is_binary)
        if len(messages) == close_after:
            conn.close_for_restart()

    conn.onMessage = record
    # a ping of ours waiting for its pong: any data frame counts as one
    conn.autoPingTimeoutCall = reactor.callLater(60, lambda: None)
    pending = conn.autoPingTimeoutCall
    for chunk in chunks:
        conn.dataReceived(chunk)
    left = conn.autoPingTimeoutCall is pending
    if pending.active():
        pending.cancel()
    t = conn.trafficStats
    return {
        "messages": list(messages),  # as now: the real peer may send more later
        "ping timeout left": left,
        "state": conn.state,
        "close code": conn.localCloseCode,
        "failed": conn.failedByMe,
        "traffic": (t.incomingOctetsWireLevel, t.incomingOctetsWebSocketLevel,
                    t.incomingOctetsAppLevel, t.incomingWebSocketFrames,
                    t.incomingWebSocketMessages),
        "buffered": conn.data,
    }


async def open_connection(server):
    """(client, the server's side of its connection)."""
    before = set(server.connections)
    client = await connect(port_of(server))
    await bounded(until(lambda: set(server.connections) - before))
    [conn] = set(server.connections) - before
    return client, conn


@pytest.mark.parametrize("name, frames, messages, max_size", SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
@pytest_twisted.ensureDeferred
async def test_a_connection_sees_what_autobahns_parser_gives(split, name, frames, messages,
                                                             max_size):
    taken = []

    def spy(*args):
        got = split(*args)
        taken.extend(got[0])
        return got

    protocol.split_frames = spy  # the fixture's monkeypatch puts it back
    server = await start_server(**({"max_message_size": max_size} if max_size else {}))
    conns = []
    try:
        wire = b"".join(frames)
        for k, chunks in enumerate(chunkings(wire, frames, seed=name)):
            seen = {}
            for fast in (False, True):
                _, conn = await open_connection(server)
                conns.append(conn)
                seen[fast] = feed(conn, chunks, fast, CLOSE_AFTER.get(name))
            assert seen[True] == seen[False], (name, k)
            assert seen[True]["messages"] == messages
            assert seen[True]["ping timeout left"] is False
        assert taken, "the fast path never took a frame"
    finally:
        for conn in conns:
            conn.transport.abortConnection()
        server.stats.take_all()  # the stats themselves are other tests' business
        await bounded(server.stopService())


READ_LOADS = {  # (the message, its frames, the size of a read)
    # a busy sender's frames arrive in reads that end mid-frame
    "gob, 1000-byte reads": (GOB, frame(BINARY, GOB), 1000),
    # an activator's: each message in 4 KiB frames, in 64 KiB reads
    "protobuf in gorilla's frames, 64 KiB reads": (ACTIVATOR, gorilla(BINARY, ACTIVATOR), 65536),
}


@pytest.mark.parametrize("load", READ_LOADS, ids=READ_LOADS)
@pytest_twisted.ensureDeferred
async def test_reads_that_cut_messages_anywhere_still_take_the_fast_path(split, load):
    payload, message, size = READ_LOADS[load]
    taken = []

    def spy(*args):
        got = split(*args)
        taken.extend(got[0])
        return got

    protocol.split_frames = spy
    server = await start_server()
    try:
        _, conn = await open_connection(server)
        wire = message * 50
        assert size % len(message)  # reads that end mid-message
        seen = feed(conn, [wire[i:i + size] for i in range(0, len(wire), size)], True)
        conn.transport.abortConnection()
        server.stats.take_all()
        assert seen["messages"] == [(payload, True)] * 50
        assert len(taken) == 50, f"{len(taken)} of 50 messages split here"
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_cut_message_is_held_only_up_to_its_bound(split):
    server = await start_server()
    try:
        _, conn = await open_connection(server)
        small, huge = gorilla(BINARY, ACTIVATOR), gorilla(BINARY, HUGE)
        conn.dataReceived(small[:-10])
        assert conn.data == small[:-10] and conn.current_frame is None  # held, unparsed
        conn.dataReceived(small[-10:] + huge[:FAST_HOLD_MAX + 100])
        # past the bound: autobahn takes the message in as it comes
        assert len(conn.data) < 100 and conn.inside_message
        conn.dataReceived(huge[FAST_HOLD_MAX + 100:])
        conn.transport.abortConnection()
        got = [s.pod_name for s in server.stats.take_all()]
        assert got == ["activator-0"] * 150, "the held message's stats"
        assert conn.data == b"" and not conn.inside_message
    finally:
        await bounded(server.stopService())
