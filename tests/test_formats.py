"""statserver.wire: detection, decoding of every era's frames, encoders, bad input."""

import json
import math
import struct

import protobuf_decoders
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import ERAS, read_frames
from wsclient import delivered

from statserver import wire
from statserver.model import StatMessage
from statserver.wire import FrameError, decode_frame, detect_format, stat_proto


@pytest.mark.parametrize("name", sorted(ERAS))
def test_every_frame_of_every_era_is_detected_as_its_format(name):
    for frame in read_frames(name):
        binary = frame["opcode"] == "binary"
        assert detect_format(frame["payload"], binary) == ERAS[name]
        if binary and ERAS[name] == "gob":
            # the rule's premise: a gob stream starts with the length of a struct type
            # definition (13 bytes at least, see docs/server.md), never 0x0a (10)
            assert frame["payload"][0] >= 13


@pytest.mark.parametrize("name", sorted(ERAS))
def test_every_frame_of_every_era_decodes_as_its_readme_says(name, protobuf_decoder):
    for frame in read_frames(name):
        fmt, stats = decode_frame(frame["payload"], frame["opcode"] == "binary", 42)
        assert fmt == ERAS[name]
        assert [delivered(s) for s in stats] == frame["stats"]
        assert all(s.received_at == 42 for s in stats)


# ---- encoders (used by the Python client) round-trip ----

names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
seconds = st.integers(min_value=1, max_value=2**40)


@st.composite
def stats(draw, timestamps=True):
    ts = draw(st.none() | seconds) if timestamps else None
    return StatMessage(
        draw(names),
        draw(names),
        draw(names),
        *(draw(floats) for _ in range(5)),
        timestamp=None if ts is None else ts * 1_000_000_000,
    )


@given(st.lists(stats(), max_size=12))
def test_protobuf_round_trip(messages):
    payload = wire.encode_protobuf(messages)
    assert detect_format(payload, True) == "protobuf"
    for implementation, decode in protobuf_decoders.both():
        got = decode(payload, 7)
        assert got == [m._replace(received_at=7) for m in messages], implementation


GOB_ERAS = ("v02", "v06", "v07", "v08", "v10", "v12")


@settings(max_examples=60)
@given(stats(), st.sampled_from(GOB_ERAS))
def test_gob_frames_of_every_era_are_detected_as_gob(message, era):
    from statserver.wire.gobstat import encode_stat_frame

    message = message._replace(request_count=17.0, proxied_request_count=3.0)  # fit int32
    payload = encode_stat_frame(message, era=era)
    assert payload[0] >= 21  # a struct type definition's length, never 0x0a
    assert detect_format(payload, True) == "gob"
    fmt, [got] = decode_frame(payload, True)
    assert fmt == "gob"
    if era in ("v02", "v06", "v07"):  # a "ns/name" string key, split at its first "/"
        assert got.key == message.key
    else:
        assert (got.namespace, got.name) == (message.namespace, message.name)


@given(stats())
def test_json_round_trip(message):
    text = wire.encode_json(message)
    fmt, [got] = decode_frame(text.encode(), False, 7)
    assert fmt == "json"
    assert got == message._replace(received_at=7)


def test_encode_json_is_the_v016_form():
    m = StatMessage("ns", "rev", "pod", 1.5, 0.0, 3.0, 0.0, 2.5)
    assert json.loads(wire.encode_json(m)) == {
        "Key": {"Namespace": "ns", "Name": "rev"},
        "Stat": {
            "pod_name": "pod",
            "average_concurrent_requests": 1.5,
            "request_count": 3.0,
            "process_uptime": 2.5,
        },
    }


def test_the_descriptor_is_built_from_stat_proto():
    fields = {f.name: f.number for f in stat_proto.WireStatMessage.DESCRIPTOR.fields}
    assert fields == {"namespace": 1, "name": 2, "stat": 3}
    stat = stat_proto.WireStatMessage.DESCRIPTOR.fields_by_name["stat"].message_type
    assert [(f.name, f.number) for f in stat.fields] == [
        ("pod_name", 1),
        ("average_concurrent_requests", 2),
        ("average_proxied_concurrent_requests", 3),
        ("request_count", 4),
        ("proxied_request_count", 5),
        ("process_uptime", 6),
        ("timestamp", 7),
    ]


# ---- protobuf details ----


def _ld(field, body):
    return bytes([field << 3 | 2, len(body)]) + body


def test_protobuf_entry_without_stat_is_skipped_and_empty_stat_kept(protobuf_decoder):
    no_stat = _ld(1, _ld(1, b"ns") + _ld(2, b"gone"))
    empty_stat = _ld(1, _ld(1, b"ns") + _ld(2, b"zero") + _ld(3, b""))
    fmt, got = decode_frame(no_stat + empty_stat, True)
    assert [(s.name, s.request_count, s.timestamp) for s in got] == [("zero", 0.0, None)]


def test_protobuf_unknown_fields_are_ignored(protobuf_decoder):
    unknown = bytes([7 << 3 | 0, 5])  # a varint field 7 the schema lacks
    stat = _ld(3, _ld(1, b"pod") + bytes([4 << 3 | 1]) + struct.pack("<d", 3.0) + unknown)
    fmt, [got] = decode_frame(_ld(1, _ld(2, b"rev") + stat + unknown) + unknown, True)
    assert (got.name, got.pod_name, got.request_count) == ("rev", "pod", 3.0)


def test_protobuf_negative_timestamp(protobuf_decoder):
    stat = _ld(3, bytes([7 << 3]) + b"\xff" * 9 + b"\x01")  # int64 -1
    fmt, [got] = decode_frame(_ld(1, stat), True)
    assert got.timestamp == -1_000_000_000


@pytest.mark.parametrize(
    "payload",
    [
        b"\x0a",  # a length missing
        b"\x0a\x05ab",  # truncated
        _ld(1, _ld(1, b"\xff\xfe")),  # namespace not UTF-8
        _ld(1, _ld(3, bytes([2 << 3 | 1]) + b"\x00\x00")),  # truncated double
        b"\x0a\x02\x0b\x00",  # a group start (wire type 3) in a message
    ],
)
def test_bad_protobuf_is_a_frame_error(payload, protobuf_decoder):
    with pytest.raises(FrameError) as e:
        decode_frame(payload, True)
    assert e.value.format == "protobuf"


# ---- JSON details ----


def test_json_keys_match_case_insensitively_like_go():
    text = b'{"key":{"namespace":"ns","NAME":"rev"},"stat":{"Pod_Name":"p","request_count":2}}'
    fmt, [got] = decode_frame(text, False)
    assert (got.namespace, got.name, got.pod_name, got.request_count) == ("ns", "rev", "p", 2.0)


def test_json_timestamp_seconds():
    text = b'{"Key":{"Namespace":"ns","Name":"r"},"Stat":{"timestamp":1552572567}}'
    fmt, [got] = decode_frame(text, False)
    assert got.timestamp == 1552572567 * 1_000_000_000


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b"{}",
        b'{"Key": {"Namespace": "ns", "Name": "r"}}',
        b'{"Key": "ns/r", "Stat": {}}',
        b'{"Key": {"Namespace": 3, "Name": "r"}, "Stat": {}}',
        b'{"Key": {}, "Stat": {"request_count": "3"}}',
        b'{"Key": {}, "Stat": {"request_count": true}}',
        b'{"Key": {}, "Stat": {"request_count": NaN}}',
        b'{"Key": {}, "Stat": {"request_count": 1e999}}',
        b'{"Key": {}, "Stat": {"request_count": 1%s}}' % (b"0" * 309),  # beyond float
        b'{"Key": {}, "Stat": {"process_uptime": -1%s}}' % (b"0" * 400),
        b'{"Key": {}, "Stat": {"timestamp": 1.5}}',
        b"\xff\xfe{}",
        b"[" * 100000,
    ],
)
def test_bad_json_is_a_frame_error(text):
    with pytest.raises(FrameError) as e:
        decode_frame(text, False)
    assert e.value.format == "json"


# ---- no input raises anything but FrameError ----


@settings(max_examples=300)
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_decode_or_raise_frame_error(payload, is_binary):
    try:
        fmt, got = decode_frame(payload, is_binary)
    except FrameError as e:
        assert e.format in wire.FORMATS
    else:
        assert all(isinstance(s, StatMessage) for s in got)
        assert all(math.isfinite(s.request_count) or is_binary for s in got)
