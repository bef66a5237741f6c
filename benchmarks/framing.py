"""µs of CPU per frame on the server's receive path, from a read's bytes to the stats on
the queue: autobahn's parser against the fast path for whole data frames
(``statserver/server/framing.py``), with the pure and the compiled ``split_frames``.

A server on 127.0.0.1 with one real connection; its reads are handed to the connection's
``dataReceived`` in this process (so that only the server's own work is timed): gob
seed-era frames one a read (a queue-proxy's rhythm) and many a read (a busy sender's,
64 KiB reads that end mid-frame), and protobuf messages of 100 stats in 64 KiB reads, in
one frame each and as a Knative activator sends them (gorilla/websocket's 4 KiB frames).
Minimum of 5 runs each, all in one process and interleaved, the queue emptied between
runs. Prints the figures; asserts nothing.
"""

import argparse
import os
import statistics
import sys
import time

from _bench import machine
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString

from statserver.model import StatMessage
from statserver.server import framing, protocol
from statserver.server.service import StatsServer
from statserver.wire import encode_protobuf
from statserver.wire.gobstat import encode_stat_frame


def client_frame(payload, first=0x82):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + framing.unmask(payload, mask)  # XOR both ways


def gorilla_frames(payload, size=4096):
    """A binary message in frames of ``size`` bytes, as gorilla/websocket (every Knative
    sender's WebSocket library) sends one longer than its 4 KiB write buffer."""
    parts = [payload[i:i + size] for i in range(0, len(payload), size)]
    return b"".join(client_frame(part, (0x02 if i == 0 else 0) | (0x80 if i == len(parts) - 1 else 0))
                    for i, part in enumerate(parts))


def stat(i):
    return StatMessage("ns", f"rev-{i % 50}", "activator-0", 1.5, 0.0, 3.0, 0.0, 0.0,
                       1_700_000_000_000_000_000 + i, None, None)


def workloads(count):
    gob = [client_frame(encode_stat_frame(stat(i))) for i in range(count)]
    batches = [encode_protobuf([stat(i * 100 + j) for j in range(100)]) for i in range(count // 100)]
    proto = [client_frame(batch) for batch in batches]
    fragmented = [gorilla_frames(batch) for batch in batches]

    def reads_of(frames, size):
        wire = b"".join(frames)
        return [wire[i:i + size] for i in range(0, len(wire), size)]

    return {
        "gob v10, a frame a read": (gob, count),
        "gob v10, 64 KiB reads": (reads_of(gob, 65536), count),
        "protobuf 100 a frame, 64 KiB reads": (reads_of(proto, 65536), len(proto)),
        "protobuf 100 a message in 4 KiB frames (gorilla's), 64 KiB reads":
            (reads_of(fragmented, 65536), len(proto)),
    }


async def main(args):
    # a queue that never fills: every frame is decoded and queued (none held for later)
    server = StatsServer(serverFromString(reactor, "tcp:0:interface=127.0.0.1"), reactor=reactor,
                         queue_size=10 ** 9)
    server.startService()
    await server.listening
    port = server.port.getHost().port
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/", reactor=reactor)
    factory.protocol = WebSocketClientProtocol
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    while not server.connections:
        await task.deferLater(reactor, 0.01, lambda: None)
    [conn] = server.connections
    compiled = framing.compiled_split_frames()
    ways = [("autobahn's parser", None), ("fast path, pure", framing.pure_split_frames)]
    if compiled is not None:
        ways.append(("fast path, compiled", compiled))
    loads = workloads(args.frames)
    results = {}
    for _ in range(args.repeat):
        for load, (reads, frames) in loads.items():
            for way, split in ways:
                conn._fast_frames = split is not None
                if split is not None:
                    protocol.split_frames = split
                started = time.process_time()
                for data in reads:
                    conn.dataReceived(data)
                took = time.process_time() - started
                server.stats.take_all()
                results.setdefault((load, way), []).append(took / frames * 1e6)
    print(f"machine: {machine()}")
    print(f"{args.frames} gob frames, {args.frames // 100} protobuf frames; "
          f"µs of CPU per frame, minimum (median) of {args.repeat}:")
    for load in loads:
        print(f" {load}:")
        base = min(results[(load, ways[0][0])])
        for way, _ in ways:
            runs = results[(load, way)]
            print(f"  {way:<22} {min(runs):8.2f} ({statistics.median(runs):8.2f})"
                  f"   {base / min(runs):4.2f}x")
    conn.transport.abortConnection()
    await server.stopService()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    task.react(lambda _: defer.ensureDeferred(main(args)))
    sys.exit(0)
