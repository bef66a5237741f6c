"""Gob encode benchmark: µs per ``StatMessage`` through ``statserver.wire.gobstat.encode_stat_frame``.

Times (1) the stat of the first frame of ``$STAT_FRAMES/v10.jsonl`` (default
``tests/data/stat-frames``; a built-in copy of that stat when absent)
and (2) a batch of 100 different stats, each its own fresh-encoder stream as a Knative
sender writes it; also the generic ``statserver.gob.encode`` of the same value (no cached
type definitions), for comparison. Prints the median of several runs and the machine.

    python benchmarks/gob_encode.py [--seconds 0.5] [--repeat 7]
"""

import argparse
import statistics
import sys

from _bench import machine, stat_frames, us_per_item

from statserver.gob import encode
from statserver.model import StatMessage
from statserver.wire.gobstat import _ERA_TYPES, _stat_value, encode_stat_frame

SEED = StatMessage("ns-0", "rev-0-0", "activator-0", 0.25, timestamp=1552572567770464932,
                   timestamp_offset=3600)


def first_v10_stat():
    """The stat of the first v10 frame, with its time's zone offset (CET in those frames)."""
    frames = stat_frames("v10.jsonl")
    if not frames:
        return SEED, None
    line = frames[0]
    s = line["stats"][0]
    m = SEED._replace(namespace=s["namespace"], name=s["name"], pod_name=s["pod_name"],
                      average_concurrent_requests=s["average_concurrent_requests"],
                      average_proxied_concurrent_requests=s["average_proxied_concurrent_requests"],
                      request_count=s["request_count"],
                      proxied_request_count=s["proxied_request_count"])
    return m, bytes.fromhex(line["frame"])


def batch(n=100):
    return [SEED._replace(name=f"rev-{i % 7}", pod_name=f"activator-{i % 5}",
                          average_concurrent_requests=i % 50 + 0.25, request_count=float(i % 100),
                          proxied_request_count=float(i % 13),
                          timestamp=SEED.timestamp + i * 1_234_567_000) for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.5, help="length of one run")
    ap.add_argument("--repeat", type=int, default=7, help="runs; the median is printed")
    args = ap.parse_args()

    seed, frame = first_v10_stat()
    first = encode_stat_frame(seed)  # also fills the era types' cache used below
    if frame is not None and first != frame:
        sys.exit("encode_stat_frame does not reproduce the first v10 frame")
    stats = batch()
    generic_type = _ERA_TYPES["v10"]
    generic_value = _stat_value(seed, "v10")
    print(f"machine: {machine()}")
    rows = [
        ("encode_stat_frame, first v10 stat", lambda m: encode_stat_frame(m), [seed]),
        ("encode_stat_frame, 100-stat batch", lambda m: encode_stat_frame(m), stats),
        ("encode_stat_frame v12, 100-stat batch", lambda m: encode_stat_frame(m, "v12"), stats),
        ("gob.encode (types described each time)", lambda v: encode(v, generic_type),
         [generic_value]),
    ]
    for label, fn, items in rows:
        us = statistics.median(us_per_item(fn, items, args.seconds, args.repeat))
        print(f"{label:<42} {us:7.2f} µs per message (median of {args.repeat})")


if __name__ == "__main__":
    main()
