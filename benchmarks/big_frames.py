"""The longest reactor stall while a running server takes one big protobuf frame.

A ``StatsServer`` with the command's default sinks (the summary and the aggregator) runs
in this process; a child process connects over 127.0.0.1 and writes one frame; a probe
due every 2 ms measures how late the reactor runs it. The figure is the longest lateness
seen from the frame's send to the last of its stats taken by the sinks: the longest time
the reactor could not answer anything else (a probe, a scrape, another sender). On a
shared machine the wall-clock lateness includes the time the process was not running;
the reactor thread's CPU time between two probes (``time.thread_time``) does not, and is
the server's own work. Each
frame is timed with the server slicing big frames (as it does) and with slicing turned
off (every frame decoded and queued in one go, as before issue 10).

    python benchmarks/big_frames.py [--repeat 3] [--gc-freeze start]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _bench import machine
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import serverFromString

from statserver.gcpolicy import FreezeSurvivors
from statserver.model import StatMessage
from statserver.server import service as server_module
from statserver.server.service import MAX_MESSAGE_SIZE, StatsServer
from statserver.sinks.consumer import StatsConsumer
from statserver.sinks.summary import Summary
from statserver.tap import GC_FREEZE, _aggregator
from statserver.wire import encode_protobuf

CLIENT = r"""
import socket, struct, sys
port, path = int(sys.argv[1]), sys.argv[2]
payload = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
reply = b""
while b"\r\n\r\n" not in reply:
    reply += s.recv(4096)
# FIN + binary; masked with a zero key (the payload is sent as is); 64-bit length
s.sendall(b"\x82\xff" + struct.pack(">Q", len(payload)) + b"\x00\x00\x00\x00" + payload)
sys.stdin.read()  # keep the connection until told
"""


def frames():
    size = MAX_MESSAGE_SIZE
    longest = encode_protobuf([
        StatMessage("n" * 63, f"{i:063d}", "p" * 253, 1.5, 0.5, 3.0, 1.0, 86400.5,
                    timestamp=int(time.time()) * 1_000_000_000) for i in range(10_000)])
    small = encode_protobuf([StatMessage("a", str(i)) for i in range(size // 16)])
    return [
        ("1 MiB: 262,140 entries with an empty stat and no key (issue 10)",
         b"\x0a\x02\x1a\x00" * 262_140),
        ("5 MiB: entries with an empty stat and no key", b"\x0a\x02\x1a\x00" * (size // 4)),
        ("5 MiB: empty entries (no stat: skipped)", b"\x0a\x00" * (size // 2)),
        (f"{len(small) / 2**20:.1f} MiB: {size // 16:,} stats of 1-char namespaces and short names", small),
        ("4.4 MB: 10,000 revisions of the longest names", longest),
    ]


async def stall_ms(payload, sliced):
    server_module.PROTOBUF_PIECE_BYTES = 16 * 1024 if sliced else 1 << 40
    server = StatsServer(serverFromString(reactor, "tcp:0:interface=127.0.0.1"),
                         reactor=reactor, max_message_size=MAX_MESSAGE_SIZE)
    sinks = [Summary(registry=server.registry, reactor=reactor), _aggregator({}, server, reactor)]
    consumer = StatsConsumer(server.stats, sinks, clock=reactor)
    consumer.startService()
    server.startService()
    port = (await server.listening).getHost().port
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(payload)
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), f.name],
                              stdin=subprocess.PIPE)
    worst_wall = worst_cpu = 0.0
    last_wall, last_cpu = time.perf_counter(), time.thread_time()
    interval = 0.002

    def probe():
        nonlocal worst_wall, worst_cpu, last_wall, last_cpu
        wall, cpu = time.perf_counter(), time.thread_time()
        worst_wall = max(worst_wall, wall - last_wall - interval)
        worst_cpu = max(worst_cpu, cpu - last_cpu)
        last_wall, last_cpu = wall, cpu

    done = Deferred()

    def check():
        frames = sum(server.metrics.frames.counts.values())
        if frames and not server._slicing and not server.stats.pending and not done.called:
            done.callback(None)

    probe_loop = task.LoopingCall(probe)
    probe_loop.start(interval)
    checker = task.LoopingCall(check)
    checker.start(0.01)
    await done.addTimeout(120, reactor)
    probe_loop.stop()
    checker.stop()
    client.stdin.close()
    client.wait()
    os.unlink(f.name)
    await server.stopService()
    await consumer.stopService()
    return worst_cpu * 1000, worst_wall * 1000


async def main(repeat, gc_freeze):
    all_frames = frames()
    # as twist statserver does once started (statserver.tap, --gc-freeze)
    FreezeSurvivors().start(after_full_collections=gc_freeze == "survivors")
    print(machine())
    print(f"--gc-freeze {gc_freeze}")
    print(f"default max message size: {MAX_MESSAGE_SIZE:,} bytes")
    print(f"medians of {repeat} runs; CPU: the reactor thread's CPU time between two probes "
          "(the server's own work); wall: how late the probe ran (adds the machine's noise)")
    print("| frame | bytes | sliced: CPU ms | wall ms | unsliced: CPU ms | wall ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, payload in all_frames:
        sliced = [await stall_ms(payload, True) for _ in range(repeat)]
        whole = [await stall_ms(payload, False) for _ in range(repeat)]
        figures = [statistics.median(run[i] for run in runs) for runs in (sliced, whole)
                   for i in (0, 1)]
        print(f"| {label} | {len(payload):,} | "
              + " | ".join(f"{f:.0f}" for f in figures) + " |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gc-freeze", choices=GC_FREEZE, default=GC_FREEZE[0],
                        help="as twist statserver's option (default: %(default)s)")
    args = parser.parse_args()
    task.react(lambda _: ensureDeferred(main(args.repeat, args.gc_freeze)))
