"""Abuse benchmark: what each hostile sender, slow disk or big cluster costs the server.

Every scenario runs against a fresh ``twist statserver`` in a subprocess (as
``ingest.py`` starts it, with ``--stats-log`` to a file unless the scenario gives its
own) while a ``/healthz`` probe asks every 10 ms on a kept-alive connection. Printed per
scenario:

- probe: the longest a ``/healthz`` answer took (machine noise included);
- stall: ``statserver_reactor_stall_max_seconds``, the server's own measure of how long
  its reactor was held, less the time its thread waited for a CPU (``statserver/server/lag.py``):
  the figure to hold to the 50 ms target on a shared machine;
- RSS before and after (MB), from ``/proc/PID/status``;
- stats sent / received (``statserver_stats_received_total``) / logged (stats-log lines);
- lines the server logged, and what the scenario's own check saw.

    python benchmarks/abuse.py            # every scenario, full size
    python benchmarks/abuse.py --quick    # small sizes: a smoke run
    python benchmarks/abuse.py --only ping,pong
"""

import argparse
import base64
import http.client
import os
import re
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

from _bench import machine
from ingest import free_port, our_server

from statserver.model import StatMessage
from statserver.server.framing import unmask
from statserver.wire import encode_json, encode_protobuf

MB = 1 << 20


# ---- a blocking WebSocket client, raw enough to misbehave ----


def frame(opcode, payload, mask=b"\x11\x22\x33\x44"):
    """One final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + unmask(payload, mask)


def upgrade(host="127.0.0.1"):
    key = base64.b64encode(os.urandom(16))
    return (b"GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n" % (host.encode(), key))


class Sender:
    """A WebSocket to the server; ``send`` writes frames, ``close`` says goodbye."""

    def __init__(self, port, *, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(10)
        self.sock.sendall(upgrade())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError(f"handshake refused: {reply!r}")
            reply += chunk
        if not reply.startswith(b"HTTP/1.1 101"):
            raise OSError(f"handshake refused: {reply[:80]!r}")
        self.rest = reply.split(b"\r\n\r\n", 1)[1]

    def send(self, data):
        self.sock.sendall(data)

    def recv_until(self, marker, timeout=5.0):
        self.sock.settimeout(timeout)
        data = self.rest
        try:
            while marker not in data:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        self.rest = data
        return marker in data

    def close(self):
        try:
            self.sock.sendall(frame(8, (1000).to_bytes(2, "big")))
            self.sock.settimeout(5)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.sock.close()


def stats_frame(first, count, ns="ns", **kw):
    return encode_protobuf([StatMessage(ns, f"rev-{first + i}", "activator-1",
                                        average_concurrent_requests=1.0, request_count=2.0,
                                        **kw) for i in range(count)])


def json_frame(namespace="ns", name="rev", acr="1.5", timestamp=None):
    text = encode_json(StatMessage(namespace, name, "activator-1",
                                   average_concurrent_requests=1.5, request_count=3.0))
    text = text.replace('"average_concurrent_requests":1.5', f'"average_concurrent_requests":{acr}')
    if timestamp is not None:
        text = text[:-2] + f',"timestamp":{timestamp}' + text[-2:]
    return text.encode()


# ---- the server and the probe ----


class Probe(threading.Thread):
    """GET /healthz every 10 ms on a kept-alive connection; ``worst`` is the longest
    answer (s), ``failures`` the requests that got no 200."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.worst = 0.0
        self.failures = 0
        self._halt = threading.Event()

    def run(self):
        conn = None
        while not self._halt.is_set():
            t = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
                conn = None
            self.worst = max(self.worst, time.monotonic() - t)
            self._halt.wait(0.01)

    def stop(self):
        self._halt.set()
        self.join(60)


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
        return r.read().decode("utf-8", "replace")


def sample(text, name):
    """The sum of every sample of ``name`` in an exposition text."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})?\s+(\S+)", re.M)
    return sum(float(v) for v in pattern.findall(text))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return "-"


class Run:
    """One scenario's server and what it measured."""

    def __init__(self, tmp, extra=(), stats_log=True):
        self.port = free_port()
        self.stats_log = os.path.join(tmp, f"stats-{self.port}.jsonl") if stats_log else None
        args = list(extra)
        if stats_log:
            args += ["--stats-log", self.stats_log]
        self.server = our_server(self.port, args)
        self.server.wait_ready()
        self.pid = self.server.pid
        self.sent = 0
        self.note = ""

    def received(self):
        return sample(metrics(self.port), "statserver_stats_received_total")


def run_scenario(name, scenario, tmp, quick, server_args=()):
    extra, stats_log = scenario.server_args(tmp) + list(server_args), scenario.stats_log
    run = Run(tmp, extra, stats_log=stats_log)
    stall = received = None
    try:
        time.sleep(0.5)  # settle after start-up
        rss_before = rss_mb(run.pid)
        probe = Probe(run.port)
        probe.start()
        try:
            scenario.run(run, quick)
        except Exception as e:  # a server that stops answering (before the fixes)
            run.note = f"scenario failed: {e!r}"
        probe.stop()
        rss_after = rss_mb(run.pid)
        try:
            text = metrics(run.port)
            if "statserver_reactor_stall_max_seconds" in text:
                stall = sample(text, "statserver_reactor_stall_max_seconds") * 1e3
            received = int(sample(text, "statserver_stats_received_total"))
        except OSError as e:
            run.note += f"; /metrics failed: {e!r}"
        codes = f"/metrics {get(run.port, '/metrics')}, /api {get(run.port, '/api/v1/revisions')}"
    finally:
        run.server.stop()
    logged = "-"
    if run.stats_log and os.path.exists(run.stats_log):
        with open(run.stats_log, "rb") as f:
            logged = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(MB), b""))
    if scenario.logged is not None:
        logged = scenario.logged
    run.server.log.seek(0)
    lines = run.server.log.read().count(b"\n")
    return {
        "scenario": name, "probe": probe.worst * 1e3, "stall": stall,
        "rss": f"{rss_before:.0f}→{rss_after:.0f}", "sent": run.sent,
        "received": "-" if received is None else received, "logged": logged, "lines": lines,
        "note": "; ".join(x for x in (run.note, codes) if x),
        "probe_failures": probe.failures,
    }


def median_row(rows):
    """The run of median stall (else probe) of a scenario's repeated runs."""
    key = (lambda r: r["stall"]) if all(r["stall"] is not None for r in rows) else (
        lambda r: r["probe"])
    ordered = sorted(rows, key=key)
    row = dict(ordered[len(ordered) // 2])
    row["probe"] = statistics.median(r["probe"] for r in rows)
    if len(rows) > 1:
        stalls = [r["stall"] for r in rows if r["stall"] is not None]
        row["runs"] = ", ".join(f"{x:.0f}" for x in stalls) if stalls else ""
    return row


def ms(value):
    return "-" if value is None else f"{value:.0f}"


# ---- scenarios ----


class Scenario:
    stats_log = True
    logged = None

    def server_args(self, tmp):
        return []

    def run(self, run, quick):
        raise NotImplementedError


class Baseline(Scenario):
    """One well-behaved sender: 100 stats a frame."""

    def run(self, run, quick):
        sender = Sender(run.port)
        frames = 20 if quick else 200
        for i in range(frames):
            sender.send(frame(2, stats_frame(i * 100, 100)))
            time.sleep(0.01)
        run.sent = frames * 100
        sender.close()
        wait_received(run, run.sent)


def wait_received(run, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.received() >= n:
            return True
        time.sleep(0.05)
    run.note = f"only {run.received():.0f} of {n} received"
    return False


class SlowStatsLog(Scenario):
    """--stats-log is a FIFO read at 16 KB/s (a slow disk, NFS) while a sender sends."""

    stats_log = False

    def server_args(self, tmp):
        self.fifo = os.path.join(tmp, f"fifo-{time.monotonic_ns()}")
        os.mkfifo(self.fifo)
        self.fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.read = 0
        self.rate = 16 * 1024
        self.done = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return ["--stats-log", self.fifo]

    def _read(self):
        while not self.done.is_set() or self.rate is None:
            try:
                chunk = os.read(self.fd, 1 << 16 if self.rate is None else self.rate // 10)
            except BlockingIOError:
                chunk = b""
            if chunk:
                self.read += chunk.count(b"\n")
            elif self.done.is_set():
                return
            if self.rate is not None:
                time.sleep(0.1)
            elif not chunk:
                time.sleep(0.01)

    def run(self, run, quick):
        sender = Sender(run.port)
        frames = 50 if quick else 300
        for i in range(frames):
            sender.send(frame(2, stats_frame(i * 100, 100)))
        run.sent = frames * 100
        time.sleep(2 if quick else 8)  # the slow reader meanwhile
        self.rate = None  # then it reads at full speed
        deadline = time.monotonic() + 60
        while self.read < run.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        sender.close()
        self.done.set()
        self.logged = self.read


class ScrapeFlood(Scenario):
    """10,000 revisions, then pipelined /metrics and /api requests."""

    def run(self, run, quick):
        revisions = 2000 if quick else 10000
        sender = Sender(run.port)
        for i in range(0, revisions, 1000):
            sender.send(frame(2, stats_frame(i, 1000, ns=f"namespace-{i // 1000}")))
        run.sent = revisions
        wait_received(run, revisions)
        floods = []
        for path in ("/metrics", "/api/v1/revisions"):
            s = socket.create_connection(("127.0.0.1", run.port))
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode() * 10)
            floods.append(s)
        t = time.monotonic()
        for s in floods:
            s.settimeout(60)
            got = b""
            while got.count(b"HTTP/1.1 200") < 10 or not got.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
            s.close()
        run.note = f"20 pipelined requests answered in {time.monotonic() - t:.2f}s"
        sender.close()


class PingFlood(Scenario):
    """Pings on a connection that never reads the pongs."""

    def run(self, run, quick):
        sender = Sender(run.port, rcvbuf=4096)
        pings = frame(9, b"p" * 125) * 1000
        sent = 0
        try:
            for _ in range(30 if quick else 200):
                sender.send(pings)
                sent += 1000
        except OSError as e:
            run.note = f"closed after {sent} pings ({e.__class__.__name__})"
        else:
            run.note = f"{sent} pings sent"
        sender.sock.close()


class PongFlood(Scenario):
    """Pongs nobody asked for (while the server waits for its own ping's pong)."""

    def server_args(self, tmp):
        return ["--ping-interval", "1"]

    def run(self, run, quick):
        sender = Sender(run.port)
        sender.recv_until(b"\x89", 5)  # the server's ping: a pong is now pending
        n = 2000 if quick else 20000
        sender.send(frame(10, b"not yours") * n + frame(2, stats_frame(0, 1)))
        run.sent = 1
        wait_received(run, 1)
        run.note = f"{n} pongs"
        sender.close()


class Slowloris(Scenario):
    """Connections sending their request a byte a second."""

    def run(self, run, quick):
        count = 20 if quick else 200
        seconds = 3 if quick else 13
        socks = [socket.create_connection(("127.0.0.1", run.port)) for _ in range(count)]
        request = upgrade()
        closed = 0
        for i in range(seconds):
            for s in socks:
                try:
                    s.send(request[i:i + 1])
                except OSError:
                    pass
            time.sleep(1)
        time.sleep(0.2)
        for s in socks:
            s.setblocking(False)
            try:
                closed += s.recv(4096).startswith(b"HTTP/1.1 408")
            except OSError:  # still open: nothing to read
                pass
            s.close()
        run.note = f"{closed} of {count} answered 408 and closed within {seconds}s"


class BigBody(Scenario):
    """A 50 MB POST to /healthz."""

    def run(self, run, quick):
        s = socket.create_connection(("127.0.0.1", run.port))
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n")
        chunk = b"x" * 65536
        sent = 0
        s.settimeout(5)
        try:
            for _ in range(800):
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        try:
            answer = s.recv(100)
        except OSError:
            answer = b""
        s.close()
        run.note = f"{sent / MB:.1f} MB written before the answer {answer[:12]!r}"


class ConnectStorm(Scenario):
    """Thousands of WebSockets dialled at once, then closed at once."""

    def run(self, run, quick):
        count = 200 if quick else 3000
        ok = failed = 0
        socks = []
        t = time.monotonic()
        for _ in range(count):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", run.port))
            socks.append(s)
        for s in socks:
            s.settimeout(10)
            try:
                s.sendall(upgrade())
                ok += s.recv(12).startswith(b"HTTP/1.1 101")
            except OSError:
                failed += 1
        run.note = f"{ok} upgraded, {failed} failed, in {time.monotonic() - t:.1f}s"
        for s in socks:
            s.close()
        # the closes are a burst of their own: wait for the server to have taken them all
        deadline = time.monotonic() + 30
        while (sample(metrics(run.port), "statserver_connections") > 0
               and time.monotonic() < deadline):
            time.sleep(0.1)


class EmptyEntries(Scenario):
    """One 1 MiB protobuf frame of 262,140 empty entries (fieldA's point 8)."""

    def run(self, run, quick):
        sender = Sender(run.port)
        entries = 20000 if quick else 262140  # each an entry with an empty Stat
        sender.send(frame(2, b"\x0a\x02\x1a\x00" * entries))
        sender.send(frame(2, stats_frame(0, 1)))
        run.sent = entries + 1
        time.sleep(2)
        sender.close()


class BadNames(Scenario):
    """Names that are not UTF-8 (a JSON "\\ud800") and 1 MB namespaces (points 1-2)."""

    def run(self, run, quick):
        sender = Sender(run.port)
        # a JSON escape of a lone surrogate: decodes to a str that is not UTF-8
        sender.send(frame(1, json_frame(namespace="SURROGATE", name="bad").replace(
            b'"SURROGATE"', b'"\\ud800"')))
        big = 2 if quick else 20
        for i in range(big):
            sender.send(frame(1, json_frame(namespace=f"{i}" + "n" * 1_000_000, name="big")))
        sender.send(frame(1, json_frame(name="good")))
        run.sent = 2 + big
        time.sleep(1)
        run.note = f"/metrics {len(metrics(run.port)) / MB:.1f} MB"
        sender.close()


class FarTimes(Scenario):
    """Stats stamped 2^62 s and in the year 2100 (points 4-5)."""

    def run(self, run, quick):
        sender = Sender(run.port)
        sender.send(frame(1, json_frame(name="t62", timestamp=2**62)))
        sender.send(frame(1, json_frame(name="t2100", timestamp=4102444800)))
        run.sent = 2
        wait_received(run, 1, timeout=5)
        sender.close()


class HugeNumbers(Scenario):
    """A JSON number of 309 digits (point 3)."""

    def run(self, run, quick):
        sender = Sender(run.port)
        sender.send(frame(1, json_frame(name="huge", acr="1" + "0" * 309)))
        sender.send(frame(1, json_frame(name="after")))
        run.sent = 2
        time.sleep(1)
        sender.close()


SCENARIOS = {
    "baseline": Baseline,
    "slow-stats-log": SlowStatsLog,
    "scrape-flood": ScrapeFlood,
    "ping": PingFlood,
    "pong": PongFlood,
    "slowloris": Slowloris,
    "body": BigBody,
    "connect-storm": ConnectStorm,
    "empty-entries": EmptyEntries,
    "bad-names": BadNames,
    "far-times": FarTimes,
    "huge-numbers": HugeNumbers,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", help="comma-separated scenario names: " + ", ".join(SCENARIOS))
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each scenario; the median is printed")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for every twist statserver, e.g. "
                             "--server-arg=--gc-freeze=start (repeatable)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SCENARIOS)
    for name in names:
        if name not in SCENARIOS:
            sys.exit(f"abuse: no scenario {name!r}; there are {', '.join(SCENARIOS)}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = median_row([run_scenario(name, SCENARIOS[name](), tmp, args.quick, args.server_arg)
                              for _ in range(args.repeat)])
            rows.append(row)
            print(f"  {row['scenario']:15s} probe {row['probe']:7.1f} ms  stall "
                  f"{ms(row['stall']):>5s} ms  RSS {row['rss']:>9s} MB  stats "
                  f"{row['sent']}/{row['received']}/{row['logged']}  lines {row['lines']}"
                  f"  {row['note']}", flush=True)
    print()
    print("| scenario | probe max (ms) | server stall (ms) | RSS MB before→after |"
          " stats sent/received/logged | lines logged | notes |")
    print("|---|---:|---:|---|---|---:|---|")
    for r in rows:
        stall = ms(r["stall"]) + (f" ({r['runs']})" if r.get("runs") else "")
        print(f"| {r['scenario']} | {r['probe']:.0f} | {stall} | {r['rss']} |"
              f" {r['sent']}/{r['received']}/{r['logged']} | {r['lines']} | {r['note']} |")

if __name__ == "__main__":
    main()
