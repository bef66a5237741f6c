"""Every frame of every gob-era file in ``$STAT_FRAMES`` (default ``tests/data/stat-frames``)
decodes to exactly the stats its README says."""

import sys
import threading

import pytest
from gobwire import fields, s, struct_type, value
from shared_data import GOB_ERAS, read_frames

from statserver.gob import GobError
from statserver.wire.gobstat import decode_stat_frame


def _frames():
    return [
        pytest.param(frame, id=f"{era}:{n}")
        for era in GOB_ERAS
        for n, frame in enumerate(read_frames(f"{era}.jsonl"))
    ]


@pytest.mark.parametrize("frame", _frames())
def test_frame_decodes_to_its_stats(frame):
    assert frame["opcode"] == "binary"
    (expected,) = frame["stats"]
    message = decode_stat_frame(bytes.fromhex(frame["frame"]), received_at=123)
    got = message.to_dict()
    assert got.pop("received_at") == "1970-01-01T00:00:00.000000123Z"
    assert got == {"timestamp": None, **expected}
    assert all(isinstance(got[k], float) for k in got if k.startswith(("average", "request", "proxied", "process")))


def test_v10_frame_keeps_the_senders_zone_offset():
    frame = read_frames("v10.jsonl")[0]
    message = decode_stat_frame(bytes.fromhex(frame["frame"]))
    assert message.timestamp_offset == 3600  # the sender's CET; timestamp itself is UTC
    assert message.received_at is None


def test_key_without_a_slash_and_a_frame_without_stat():
    stream = struct_type(65, "M", [("Key", 6)]) + value(65, fields((0, s("just-a-name"))))
    message = decode_stat_frame(stream)
    assert (message.namespace, message.name, message.timestamp) == ("just-a-name", "", None)


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x03\x0c\x00\x00", b"{\"Key\": 1}"])
def test_garbage_is_a_gob_error(payload):
    with pytest.raises(GobError):
        decode_stat_frame(payload)


def test_threads_share_the_cache_safely(monkeypatch):
    from statserver.gob import decoder

    frames = [p.values[0] for p in _frames()]
    monkeypatch.setattr(decoder, "CACHE_SIZE", 2)  # six eras: constant eviction
    expected = [decode_stat_frame(bytes.fromhex(f["frame"])) for f in frames]
    failures = []

    def work(offset):
        try:
            for n in range(600):
                k = (n * 7 + offset) % len(frames)
                assert decode_stat_frame(bytes.fromhex(frames[k]["frame"])) == expected[k]
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
