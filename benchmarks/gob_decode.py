"""Gob decode benchmark: µs per message for statserver.gob.

Times the first frame of ``$STAT_FRAMES/v10.jsonl`` (the seed's StatMessage, default
``tests/data/stat-frames``): generic ``decode`` and typed
``decode_stat_frame``, warm (type definitions cached, as for every frame after a sender's
first) and cold (cache cleared before each frame); and a protobuf-era-sized batch, 100
StatMessages in one stream, through ``decode_all``; and frames of two senders (v10, v12)
in turn. Cold frames are interpreted; a type's
second use compiles its decoder (the "second frame" row). Prints the median and the minimum of ``--repeat`` runs (the machine is shared: the minimum
is the least disturbed).

    python benchmarks/gob_decode.py [--repeat 7] [--seconds 0.5] [--against-go]

``--against-go`` also times Go's own fresh ``gob.NewDecoder(...).Decode`` of the same frame
(``benchmarks/gob_decode_go.go``; needs ``go`` on PATH, builds offline) in the same run.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _bench import machine, stat_frames_dir

from statserver.gob import decode, decode_all
from statserver.gob.decoder import clear_cache
from statserver.wire.gobstat import _StatMessage, decode_stat_frame

FRAMES = stat_frames_dir()


def per_call_us(fn, seconds, repeat, setup=None):
    """The mean µs per call of ``fn`` in each of ``repeat`` runs (``setup``, untimed, runs
    before each call), each run about ``seconds`` long."""
    clock = time.perf_counter

    def run(n):
        total = 0.0
        for _ in range(n):
            if setup:
                setup()
            start = clock()
            fn()
            total += clock() - start
        return total

    n = 1
    while run(n) < seconds / 10:
        n *= 2
    n = max(1, int(n * seconds / max(run(n), 1e-9)))
    return [run(n) / n * 1e6 for _ in range(repeat)]


def batch_stream(frames, count):
    """One stream: the first frame's type definitions, then ``count`` value messages."""

    def split(frame):
        """[type definitions][one value message]: split before the last message."""
        pos = 0
        last = 0
        while pos < len(frame):
            last = pos
            length = frame[pos]
            pos += 1
            if length >= 128:
                k = 256 - length
                length = int.from_bytes(frame[pos : pos + k], "big")
                pos += k
            pos += length
        return frame[:last], frame[last:]

    defs, _ = split(frames[0])
    values = [split(f)[1] for f in frames]
    return defs + b"".join(values[i % len(values)] for i in range(count))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--against-go", action="store_true", help="also time Go's decoder")
    args = parser.parse_args()
    path = FRAMES / "v10.jsonl"
    frames = [bytes.fromhex(json.loads(line)["frame"]) for line in path.read_text().splitlines() if line]
    frame = frames[0]
    other_path = FRAMES / "v12.jsonl"
    other = bytes.fromhex(json.loads(other_path.read_text().splitlines()[0])["frame"])

    def two_senders():  # frames of two eras in turn: the cache lookup misses its shortcut
        decode_stat_frame(frame)
        decode_stat_frame(other)
    batch = batch_stream(frames, 100)
    assert len(decode_all(batch)) == 100 and len(decode_all(batch, _StatMessage)) == 100

    print(f"machine: {machine()}")
    print(f"frame: first of {path} ({len(frame)} bytes); batch: 100 messages, {len(batch)} bytes")

    def first_frame_seen():  # the sender's first frame was interpreted; the next compiles
        clear_cache()
        decode_stat_frame(frame)
        decode(frame)

    rows = [
        ("typed decode_stat_frame, warm", lambda: decode_stat_frame(frame), None, 1),
        ("generic decode, warm", lambda: decode(frame), None, 1),
        ("typed decode_stat_frame, cold (interpreted)", lambda: decode_stat_frame(frame), clear_cache, 1),
        ("generic decode, cold (interpreted)", lambda: decode(frame), clear_cache, 1),
        ("typed, second frame (compiles)", lambda: decode_stat_frame(frame), first_frame_seen, 1),
        ("typed, two senders in turn (v10, v12)", two_senders, None, 2),
        ("batch of 100, typed decode_all, per message", lambda: decode_all(batch, _StatMessage), None, 100),
        ("batch of 100, generic decode_all, per message", lambda: decode_all(batch), None, 100),
    ]
    print(f"{'µs per message':>58s} {'median':>8s} {'min':>8s}")
    for label, fn, setup, per in rows:
        runs = [us / per for us in per_call_us(fn, args.seconds, args.repeat, setup)]
        print(f"{label:48s} {statistics.median(runs):17.2f} {min(runs):8.2f}")
    if args.against_go:
        print(go_figure(frame))
    else:
        print("reference: Go 1.19's fresh gob.NewDecoder(...).Decode of this frame: 13-19 µs here (--against-go)")


def go_figure(frame):
    """Go's fresh-decoder time for the frame, from benchmarks/gob_decode_go.go."""
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="")
    env.setdefault("GOCACHE", os.path.join(tempfile.gettempdir(), "statserver-gob-bench-gocache"))
    source = Path(__file__).with_name("gob_decode_go.go")
    try:
        out = subprocess.run(
            ["go", "run", str(source)], input=frame.hex(), capture_output=True, text=True, env=env, timeout=600
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"Go: not measured ({exc})"
    if out.returncode:
        return f"Go: not measured ({out.stderr.strip().splitlines()[-1:]})"
    version = subprocess.run(["go", "version"], capture_output=True, text=True, env=env).stdout.strip()
    return f"{out.stdout.strip()} ({version})"


if __name__ == "__main__":
    main()
