"""Decode benchmark: µs per frame (and per stat) through ``statserver.wire.decode_frame``.

Frames are Knative's frames from ``$STAT_FRAMES`` (default the repository's
``tests/data/stat-frames``, made by Go) when present, else encoded here with ``statserver``'s
encoders.

    python benchmarks/decode.py [--seconds 1] [--repeat 5]
"""

import argparse
import statistics
import sys

from _bench import machine, stat_frames, us_per_item

from statserver import wire
from statserver.constants import PURE_ENV
from statserver.model import StatMessage

FILES = {  # what to time: (label, file of real frames)
    "gob v10 (seed)": "v10.jsonl",
    "gob v12": "v12.jsonl",
    "gob v02": "v02.jsonl",
    "json": "json.jsonl",
    "protobuf, 10 a frame": "proto-ts.jsonl",
}


def real_frames(name):
    docs = stat_frames(name)
    if docs is None:
        return None
    return [(bytes.fromhex(doc["frame"]), doc["opcode"] == "binary") for doc in docs]


def stat(i):
    return StatMessage(f"ns-{i % 3}", f"rev-{i % 8}", pod_name=f"pod-{i % 5}",
                       average_concurrent_requests=i + 0.25, request_count=float(i),
                       process_uptime=i + 0.5, timestamp=1_700_000_000_000_000_000 + i)


def per_frame_us(frames, seconds, repeat):
    """Median µs per frame over ``repeat`` runs of about ``seconds`` each."""
    decode = wire.decode_frame
    for payload, is_binary in frames:  # warm up, and fail loudly on a bad frame
        decode(payload, is_binary)
    return statistics.median(us_per_item(decode, frames, seconds, repeat, unpack=True))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=1.0, help="per run")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    cases = []
    for label, name in FILES.items():
        frames = real_frames(name)
        if frames:
            cases.append((label, frames))
    if not cases:  # no frames there: our own encoders
        from statserver.wire.gobstat import encode_stat_frame

        cases = [
            ("gob v10 (seed)", [(encode_stat_frame(stat(i)), True) for i in range(20)]),
            ("json", [(wire.encode_json(stat(i)).encode(), False) for i in range(20)]),
        ]
    batch = [stat(i) for i in range(100)]
    cases.append(("protobuf, 100 a frame", [(wire.encode_protobuf(batch), True)]))
    # The largest frame a default server takes (1 MiB): an entry with an empty stat
    # is 4 bytes, each a StatMessage of zeros.
    cases.append(("protobuf, 1 MiB (262,140)", [(b"\x0a\x02\x1a\x00" * 262_140, True)]))
    print(f"{machine()}; protobuf decoder: {wire.IMPLEMENTATION} "
          f"({PURE_ENV}=1 for the pure one); median of {args.repeat} runs")
    failed = 0
    for label, frames in cases:
        try:
            wire.decode_frame(*frames[0])
        except Exception as e:
            print(f"  {label:<24} cannot decode: {e}", flush=True)
            failed += 1
            continue
        stats_per_frame = sum(len(wire.decode_frame(*f)[1]) for f in frames) / len(frames)
        us = per_frame_us(frames, args.seconds, args.repeat)
        print(f"  {label:<26} {us:10.2f} µs/frame  {us / stats_per_frame:7.2f} µs/stat",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
