"""A gob frame's era from its type definitions, and a connection's kinds of frames."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shared_data import ERAS, GOB_ERAS, read_frames

from statserver.model import StatMessage
from statserver.server.connections import CHECK_EVERY, ConnectionInfo, kind_of
from statserver.wire import decode_frame
from statserver.wire.gob_era import RELEASES, UNKNOWN, describe, gob_shape
from statserver.wire.gobstat import encode_stat_frame


@pytest.mark.parametrize("era", GOB_ERAS)
def test_every_go_written_frame_of_each_era_is_told_apart(era):
    frames = read_frames(f"{era}.jsonl")
    assert frames
    assert {gob_shape(bytes.fromhex(f["frame"])) for f in frames} == {era}


@given(st.sampled_from(GOB_ERAS), st.text(max_size=20), st.text(max_size=20),
       st.booleans())
def test_our_encoder_s_frames_of_each_era_are_told_apart(era, namespace, name, timed):
    stat = StatMessage(namespace, name, "pod", 1.0, 0.0, 2.0, 0.0,
                       timestamp=1_552_572_567_000_000_000 if timed else None)
    assert gob_shape(encode_stat_frame(stat, era)) == era


@pytest.mark.parametrize("payload", [b"", b"\x30not gob", b"\x05\xff\x81\x03\x01", bytes(range(40))])
def test_garbage_is_unknown(payload):
    assert gob_shape(payload) == UNKNOWN


@pytest.mark.parametrize("name, fmt", sorted(ERAS.items()))
def test_every_frame_file_has_the_kind_of_its_releases(name, fmt):
    expected = {"json.jsonl": "json", "proto.jsonl": "protobuf",
                "proto-ts.jsonl": "protobuf+timestamp"}.get(name, name.removesuffix(".jsonl"))
    for frame in read_frames(name):
        payload = bytes.fromhex(frame["frame"])
        if frame["opcode"] == "text":
            payload = payload.decode()
        binary = frame["opcode"] == "binary"
        decoded_fmt, stats = decode_frame(payload, binary)
        assert decoded_fmt == fmt
        assert kind_of(fmt, payload if binary else payload.encode(), stats) == expected
    assert describe(expected) == f"{expected} · {RELEASES[expected]}"


def test_a_connection_that_changes_era_shows_both_within_check_every_frames():
    info = ConnectionInfo("tcp4:127.0.0.1:1", 0)
    old = encode_stat_frame(StatMessage("ns", "rev", "p", 1.0), "v08")
    new = encode_stat_frame(StatMessage("ns", "rev", "p", 1.0), "v12")
    for _ in range(3):
        info.frame("gob", old, [None], 1)
    assert list(info.kinds) == ["v08"]
    for _ in range(CHECK_EVERY):
        info.frame("gob", new, [None], 2)
    assert list(info.kinds) == ["v08", "v12"]
    assert info.to_json(2)["formats"][1] == {
        "kind": "v12", "era": "v12 · Knative v0.12–v0.15", "format": "gob",
        "frames": CHECK_EVERY + 3}
