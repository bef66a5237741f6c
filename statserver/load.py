"""``statserver-load``: drive a stats server with many WebSocket senders, fast.

Every connection sends ``--stats`` stats (or for ``--duration`` seconds) in one format,
as fast as the server takes them (``--rate 0``) or at ``--rate`` stats a second, then
closes with 1000 and waits for the server's close, so that every frame counted as sent
has reached the server. The end line gives the stats sent, the seconds and stats/s;
the exit code is 1 when any connection failed, 2 on bad arguments.

Speed comes from encoding a small pool of frames once per connection (a few revisions
and pods, so the server still sees varied keys), masking them once (a load generator
may reuse a mask; a browser may not) and writing them in chunks of many frames. The
socket is a push producer's consumer: when its buffer is full the connection stops
writing until Twisted says it drained, so nothing piles up in the client.
"""

import argparse
import json
import os
import sys
import time

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.protocol import PreparedMessage
from autobahn.websocket.util import parse_url
from twisted.internet import defer, endpoints, protocol, task
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from statserver.client import FORMATS, encode_frames
from statserver.model import StatMessage

POOL = 16  # distinct frames per connection
CHUNK_BYTES = 32 * 1024  # frames are written to the socket this many bytes at a time
TICK = 0.01  # seconds between writes when --rate is set


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="statserver-load",
        description="Send Knative stats to a stats server over many WebSocket connections.")
    p.add_argument("--url", default="ws://127.0.0.1:8080/", help="the server (ws://HOST:PORT/)")
    p.add_argument("--connections", type=int, default=4, help="connections in all (default 4)")
    p.add_argument("--stats", type=int, default=None,
                   help="stats per connection (default 10000, or unlimited with --duration)")
    p.add_argument("--format", choices=FORMATS, default="gob")
    p.add_argument("--era", default="v10", help="gob era of the frames (default v10, the seed's)")
    p.add_argument("--batch", type=int, default=100, help="stats per protobuf frame (default 100)")
    p.add_argument("--rate", type=float, default=0,
                   help="stats a second per connection; 0 (default) = as fast as possible")
    p.add_argument("--duration", type=float, default=None, help="stop sending after this many seconds")
    p.add_argument("--processes", type=int, default=1,
                   help="share the connections among this many processes (default 1)")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("connections", "batch", "processes"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.stats is not None and args.stats < 1:
        p.error("--stats must be at least 1")
    if args.rate < 0:
        p.error("--rate must not be negative")
    if args.duration is not None and args.duration <= 0:
        p.error("--duration must be positive")
    if args.processes > args.connections:
        p.error("--processes must not exceed --connections")
    if args.stats is None and args.duration is None:
        args.stats = 10000
    try:
        secure, host, _port = parse_url(args.url)[:3]
    except Exception as e:
        p.error(f"--url: {e}")
    if secure:
        from statserver.tls import TLSUnavailable, tls_options

        try:  # here, once, rather than as every connection's failure
            tls_options(host)
        except TLSUnavailable as e:
            p.error(f"--url: {e}")
    try:  # an unknown era, or a codec that cannot encode: one readable line
        encode_frames(stat_pool(0, 0, 1), args.format, args.era)
    except Exception as e:
        p.error(f"cannot encode {args.format} frames (era {args.era}): {e!r}")
    return args


def stat_pool(worker, conn, count):
    """``count`` stats from one sender: a few namespaces and revisions, one pod."""
    now = time.time_ns()
    return [
        StatMessage(
            namespace=f"ns-{i % 3}",
            name=f"rev-{i % 8}",
            pod_name=f"load-{worker}-{conn}",
            average_concurrent_requests=(i % 50) + 0.25,
            average_proxied_concurrent_requests=(i % 10) * 0.5,
            request_count=float(i % 100),
            proxied_request_count=float(i % 13),
            process_uptime=i + 0.5,
            timestamp=now + i * 1000,
            timestamp_offset=0,
        )
        for i in range(count)
    ]


def masked(payload, is_binary):
    """A whole client frame, masked, ready for the socket."""
    return PreparedMessage(payload, is_binary, True, True).payloadHybi


class Plan:
    """The frames one connection sends: a pool of whole frames, the stats each carries,
    and chunks of whole frames joined for one write each."""

    def __init__(self, args, worker, conn):
        per_frame = args.batch if args.format == "protobuf" else 1
        stats = stat_pool(worker, conn, POOL * per_frame)
        self.frames = []
        for i in range(POOL):
            group = stats[i * per_frame:(i + 1) * per_frame]
            for payload, is_binary in encode_frames(group, args.format, args.era):
                self.frames.append(masked(payload, is_binary))
        self.per_frame = per_frame
        # One chunk: whole frames cycling through the pool until CHUNK_BYTES.
        chunk, n = [], 0
        size = 0
        while size < CHUNK_BYTES or n % POOL:
            f = self.frames[n % POOL]
            chunk.append(f)
            size += len(f)
            n += 1
        self.chunk = b"".join(chunk)
        self.chunk_stats = n * per_frame
        # The tail of a protobuf run may need a short frame.
        self._stats = stats
        self._args = args

    def short_frame(self, count):
        group = self._stats[:count]
        (payload, is_binary), = encode_frames(group, self._args.format, self._args.era)
        return masked(payload, is_binary)

    def frames_for(self, count, start):
        """Frames carrying exactly ``count`` stats, continuing the pool at ``start``."""
        out = []
        full, rest = divmod(count, self.per_frame)
        for i in range(full):
            out.append(self.frames[(start + i) % POOL])
        if rest:
            out.append(self.short_frame(rest))
        return out


@implementer(IPushProducer)
class _Sender:
    """Writes one connection's plan, pausing while the socket's buffer is full."""

    def __init__(self, proto, plan, total, rate, duration, clock):
        self.proto, self.plan, self.total, self.rate = proto, plan, total, rate
        self.clock = clock
        self.sent = 0
        self.frame_index = 0
        self.paused = False
        self.finished = False
        self.started = clock.seconds()
        # --duration counts from the connection's first send, as the end line's seconds do
        self.deadline = None if duration is None else self.started + duration
        self.done = defer.Deferred()
        self._ticker = None

    def start(self):
        self.proto.transport.registerProducer(self, True)
        if self.rate:
            self._ticker = task.LoopingCall(self._tick)
            self._ticker.clock = self.clock
            self._ticker.start(TICK, now=True)
        else:
            self._pump()

    def _left(self):
        if self.deadline is not None and self.clock.seconds() >= self.deadline:
            return 0
        return (self.total - self.sent) if self.total is not None else float("inf")

    def _write(self, count):
        frames = self.plan.frames_for(count, self.frame_index)
        self.frame_index += len(frames)
        self.proto.sendData(b"".join(frames))
        self.sent += count

    def _pump(self):
        write = self.proto.sendData
        chunk, chunk_stats = self.plan.chunk, self.plan.chunk_stats
        while not self.paused and not self.finished:
            left = self._left()
            if left <= 0:
                self._finish()
            elif left >= chunk_stats:
                write(chunk)
                self.sent += chunk_stats
            else:
                self._write(left)

    def _tick(self):
        if self.paused or self.finished:
            return
        left = self._left()
        if left <= 0:
            self._finish()
            return
        due = int(self.rate * (self.clock.seconds() - self.started) + 1) - self.sent
        due -= due % self.plan.per_frame if due > self.plan.per_frame else 0
        if due > 0:
            self._write(int(min(due, left)))

    def _finish(self):
        self.finished = True
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self.proto.sendClose(1000)

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        if not self.rate and not self.finished:
            self._pump()

    def stopProducing(self):
        self.paused = True
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()


class _LoadProtocol(WebSocketClientProtocol):
    sender = None

    def onOpen(self):
        f = self.factory
        self.sender = _Sender(self, f.plan, f.args.stats, f.args.rate, f.args.duration,
                              f.clock)
        f.senders.append(self.sender)
        f.opened.callback(None)
        self.sender.start()

    def onClose(self, wasClean, code, reason):
        sender = self.sender
        if sender is None:
            result = ConnectionFailed(f"the WebSocket handshake failed: {reason or code}")
        else:
            sender.stopProducing()
            if sender.finished and wasClean:
                result = sender
            else:
                result = ConnectionFailed(
                    f"the connection closed after {sender.sent} stats: {reason or code}")
        if not self.factory.opened.called:
            self.factory.opened.errback(result)
        elif not self.factory.closed.called:
            self.factory.closed.callback(result)


class ConnectionFailed(Exception):
    """One connection could not send all it should have."""


async def run_connection(reactor, args, worker, conn, senders):
    """Send one connection's stats; return (stats sent, reactor time of the open, of the
    close). Its sender is appended to ``senders`` once open (for progress)."""
    plan = Plan(args, worker, conn)
    factory = WebSocketClientFactory(args.url, reactor=reactor)
    factory.protocol = _LoadProtocol
    factory.setProtocolOptions(openHandshakeTimeout=5, closeHandshakeTimeout=30)
    factory.args, factory.plan, factory.clock, factory.senders = args, plan, reactor, senders
    factory.opened, factory.closed = defer.Deferred(), defer.Deferred()
    secure, host, port = parse_url(args.url)[:3]
    ep = endpoints.HostnameEndpoint(reactor, host, port, timeout=5)
    if secure:
        from statserver.tls import client_tls

        ep = client_tls(host, ep)
    try:
        await ep.connect(factory)
    except Exception as e:
        raise ConnectionFailed(f"cannot connect to {args.url}: {e}") from None
    await factory.opened
    result = await factory.closed
    if isinstance(result, Exception):
        raise result
    return result.sent, result.started, reactor.seconds()


async def run_worker(reactor, args, worker, conns, senders):
    """Run connections ``conns``; return (sent, first open, last close, failures)."""
    ds = [defer.ensureDeferred(run_connection(reactor, args, worker, c, senders))
          for c in conns]
    results = await defer.DeferredList(ds, consumeErrors=True)
    sent, failures, starts, ends = 0, [], [], []
    for ok, value in results:
        if ok:
            n, start, end = value
            sent += n
            starts.append(start)
            ends.append(end)
        else:
            failures.append(value.getErrorMessage())
    return sent, min(starts, default=None), max(ends, default=None), failures


def _wall(reactor_seconds, reactor):
    """A reactor time as wall-clock time (to compare processes)."""
    return time.time() - (reactor.seconds() - reactor_seconds)


async def _single(reactor, args):
    senders = []
    t0 = reactor.seconds()
    ticker = None
    if sys.stdout.isatty() and args.worker is None:
        def progress():
            n = sum(s.sent for s in senders)
            el = reactor.seconds() - t0
            sys.stdout.write(f"\rsent {n} stats in {el:.1f}s ({n / el:.0f} stats/s)  ")
            sys.stdout.flush()

        ticker = task.LoopingCall(progress)
        ticker.clock = reactor
        ticker.start(0.5, now=False)
    try:
        sent, start, end, failures = await run_worker(
            reactor, args, args.worker or 0, range(args.connections), senders)
    finally:
        if ticker is not None:
            ticker.stop()
            sys.stdout.write("\n")
    if args.worker is not None:
        print(json.dumps({
            "sent": sent,
            "start": None if start is None else _wall(start, reactor),
            "end": None if end is None else _wall(end, reactor),
            "failures": failures,
        }), flush=True)
        return 0
    return report(sent, None if start is None else end - start, failures, args)


def report(sent, seconds, failures, args):
    for f in failures:
        print(f"statserver-load: {f}", file=sys.stderr)
    if seconds:
        print(f"sent {sent} stats in {seconds:.3f}s: {sent / seconds:.0f} stats/s "
              f"({args.connections} connections, {args.format})", flush=True)
    else:
        print(f"sent {sent} stats ({args.connections} connections, {args.format})", flush=True)
    if failures:
        print(f"statserver-load: {len(failures)} of {args.connections} connections failed",
              file=sys.stderr)
        return 1
    return 0


class _WorkerProtocol(protocol.ProcessProtocol):
    def __init__(self):
        self.out = b""
        self.err = b""
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self.out += data

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)


async def _parent(reactor, args, argv):
    """Share the connections among ``--processes`` workers and add up their results."""
    workers = []
    for w in range(args.processes):
        count = len(range(w, args.connections, args.processes))
        child_argv = [sys.executable, "-m", "statserver.load", *argv,
                      "--connections", str(count), "--processes", "1", "--worker", str(w)]
        proto = _WorkerProtocol()
        reactor.spawnProcess(proto, sys.executable, child_argv, env=os.environ)
        workers.append(proto)
    codes = await defer.gatherResults([w.ended for w in workers])
    sent, starts, ends, failures = 0, [], [], []
    for w, code in zip(workers, codes, strict=True):
        sys.stderr.write(w.err.decode("utf-8", "replace"))
        try:
            r = json.loads(w.out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            failures.append(f"a worker process failed (exit code {code})")
            continue
        sent += r["sent"]
        failures.extend(r["failures"])
        if r["start"] is not None:
            starts.append(r["start"])
            ends.append(r["end"])
    seconds = (max(ends) - min(starts)) if starts else None
    return report(sent, seconds, failures, args)


def main(argv=None):
    """The ``statserver-load`` console script."""
    if argv is None:
        argv = sys.argv[1:]
    args = parse_args(argv)

    async def _main(reactor):
        if args.processes > 1:
            code = await _parent(reactor, args, argv)
        else:
            code = await _single(reactor, args)
        if code:
            raise SystemExit(code)

    task.react(lambda reactor: defer.ensureDeferred(_main(reactor)))


if __name__ == "__main__":
    main()
