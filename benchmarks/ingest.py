"""Ingest benchmark: stats a second a stats server takes in, end to end.

Starts the server under test (``twist statserver``) in a subprocess, drives it with
``statserver-load`` in another process, polls ``/metrics`` until
``statserver_stats_received_total`` has grown by what was sent, and prints stats/s and
the server's CPU seconds per 100k stats (from ``/proc/PID/stat``).

    python benchmarks/ingest.py              # gob, json and protobuf, medians of 3
    python benchmarks/ingest.py --quick      # a few seconds: a smoke run
    python benchmarks/ingest.py --against-go # the Go activator against our server and
                                             # against the Go refserver, and the ratio
    python benchmarks/ingest.py --many       # 2,000 connections at 1 stat/s each into
                                             # our server, the Go refserver and the Twisted
                                             # floor (twisted_floor.py), each pinned to one
                                             # core: server CPU seconds and ratios

``--against-go`` needs the repository's Go peers (``peers/``): it uses
``$STATSERVER_PEER_BIN`` when set, else builds them with ``peers/build.sh`` into a cache
directory (a few seconds the first time, quick when nothing changed).
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _bench import machine

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
_METRIC = re.compile(rb"^statserver_stats_received_total(?:\{[^}]*\})?\s+(\S+)", re.M)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


class Server:
    """A stats server in a subprocess, with its /metrics."""

    def __init__(self, name, argv, port):
        self.name = name
        self.port = port
        self.url = f"ws://127.0.0.1:{port}/"
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())

    def received(self):
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return sum(float(v) for v in _METRIC.findall(r.read()))

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                return self.received()
            except OSError:
                time.sleep(0.1)
        self.fail(f"{self.name} did not serve {self.metrics_url} within {timeout}s")

    @property
    def pid(self):
        """The server's own pid (under py-spy, py-spy's child)."""
        if not getattr(self, "sampled", False):
            return self.proc.pid
        for _ in range(100):
            try:
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                    kids = f.read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                pass
            time.sleep(0.05)
        return self.proc.pid

    def cpu(self):
        return cpu_seconds(self.pid)

    def fail(self, why):
        self.stop()
        self.log.seek(0)
        tail = self.log.read()[-3000:].decode("utf-8", "replace")
        sys.exit(f"ingest: {why}\n--- {self.name} output ---\n{tail}")

    def stop(self):
        if self.proc.poll() is None:
            if getattr(self, "sampled", False):
                os.kill(self.pid, 15)  # py-spy writes its samples once the server exits
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    pass
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def our_server(port, extra, profile=None, py_spy=None, pin=(), backlog=None):
    where = f"tcp:{port}:interface=127.0.0.1" + (f":backlog={backlog}" if backlog else "")
    argv = [*pin, sys.executable, "-m", "twisted", "statserver", "--port", where, *extra]
    if profile or py_spy:
        # A profiled server falls seconds behind the load. Its ping would then reach a
        # Go activator that has already closed its socket (it waits 30 s at most for the
        # close handshake), whose RST makes the kernel drop the frames not yet read.
        argv.append("--ping-interval=3600")
    if profile:
        argv[len(pin) + 1:len(pin) + 1] = ["-m", "cProfile", "-o", profile]
    if py_spy:
        spy = shutil.which("py-spy") or sys.exit("ingest: --py-spy needs py-spy on PATH")
        argv[len(pin):len(pin)] = [spy, "record", "--format", "raw", "--rate", "250", "-o",
                                   py_spy, "--"]
    server = Server("statserver", argv, port)
    server.sampled = bool(py_spy)
    return server


# Where a sample's time goes: the innermost frame that matches decides.
LAYERS = [
    ("decoding", ("statserver/gob/", "statserver/wire/gobstat.py", "statserver/wire/protostat.py",
                  "google/protobuf/", "<gob decoder>", "json/")),
    ("metrics", ("prometheus_client/", "statserver/server/metrics.py")),
    ("sinks (aggregator, summary)", ("statserver/aggregation/aggregator.py", "statserver/aggregation/windows.py",
                                     "statserver/sinks/summary.py", "statserver/sinks/statslog.py")),
    ("queueing (DeferredQueue, consumer)", ("twisted/internet/defer.py",
                                            "statserver/sinks/consumer.py")),
    ("WebSocket framing (autobahn, our unmasking)", (
        "autobahn/", "txaio/", "statserver/server/framing.py",
        "StatsServerProtocol.onFrameData", "StatsServerProtocol.onMessageEnd")),
    ("server glue (statserver/server/service.py)", ("statserver/server/service.py",
                                            "statserver/server/protocol.py")),
    ("reactor and socket I/O", ("twisted/",)),
]


def layers(raw_path):
    """Shares of samples by layer, from py-spy's raw (collapsed) output; the reactor
    waiting in ``epoll`` (idle, though py-spy may see it running) is left out."""
    totals = {}
    for line in open(raw_path):
        stack, _, count = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        if "_CappedPoller.poll " in frames[-1]:
            continue
        layer = "other"
        for frame in reversed(frames):
            hit = next((name for name, paths in LAYERS if any(p in frame for p in paths)), None)
            if hit:
                layer = hit
                break
        totals[layer] = totals.get(layer, 0) + int(count)
    n = sum(totals.values()) or 1
    return sorted(((c / n, name) for name, c in totals.items()), reverse=True)


def go_server(peer_bin, port, fmt, pin=()):
    argv = [*pin, str(peer_bin / "refserver"), "-addr", f"127.0.0.1:{port}", "-format", fmt]
    return Server("Go refserver", argv, port)


def floor_server(port, pin=()):
    """``twisted_floor.py``: what any WebSocket server on Twisted's reactor spends."""
    argv = [*pin, sys.executable, str(Path(__file__).with_name("twisted_floor.py")), str(port)]
    return Server("Twisted floor", argv, port)


def somaxconn():
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return 4096


def many_connections(args, peers):
    """``--many``: ``--many-connections`` connections each sending one stat a second in a
    frame of its own for ``--many-seconds``, into our server, the Go refserver (when
    built) and ``twisted_floor.py``, each pinned to one core, in turn; prints each
    server's CPU seconds for the whole load (connecting and closing included) and their
    ratios.

    The load is the Go activator (``-rate 1``, the connections opened over
    ``--many-ramp`` seconds, as a fleet comes up), pinned to the other cores, so that it
    takes little of the machine and none of the server's core. Without the Go peers (or
    with ``--many-load python``) it is ``--load-processes`` (default 16) ``statserver-load``
    processes started a second apart on any core, which take both cores' time and make
    the figures noisier."""
    conns, seconds = args.many_connections, args.many_seconds
    total = conns * seconds
    taskset = shutil.which("taskset")
    cores = sorted(os.sched_getaffinity(0))
    server_pin = (taskset, "-c", str(cores[0])) if taskset else ()
    go_load = peers is not None and args.many_load == "go"
    load_pin = (taskset, "-c", ",".join(map(str, cores[1:]))) if taskset and len(cores) > 1 else ()
    print(f"{conns} connections x 1 stat/s for {seconds} s ({total} stats), 1 stat a frame; "
          f"servers pinned to core {cores[0] if server_pin else '(none: no taskset)'}; load: "
          + (f"the Go activator{' on cores ' + load_pin[2] if load_pin else ''}, opening "
             f"over {args.many_ramp} s" if go_load else
             f"{args.load_processes} statserver-load processes a second apart"),
          flush=True)
    for fmt in [f for f in args.formats.split(",") if f != "json"]:
        # Go listens with the system's somaxconn as its backlog; Twisted's default is 50,
        # too few for 2,000 connections at once (their SYNs would be dropped).
        servers = [our_server(free_port(), [*args.server_arg], args.profile, args.py_spy,
                              pin=server_pin, backlog=somaxconn())]
        if peers is not None:
            servers.append(go_server(peers, free_port(), "proto" if fmt == "protobuf"
                                     else "gob", pin=server_pin))
        servers.append(floor_server(free_port(), pin=server_pin))
        res = {s.name: [] for s in servers}
        try:
            for s in servers:
                s.wait_ready()
            for _ in range(args.repeat or 3):
                for s in servers:
                    if go_load:
                        loads = [[*load_pin, str(peers / "activator"), "-url", s.url, "-era",
                                  "proto" if fmt == "protobuf" else "seed", "-conns",
                                  str(conns), "-n", str(seconds), "-batch", "1", "-rate", "1",
                                  "-ramp", f"{args.many_ramp}s"]]
                        stagger = 0.0
                    else:
                        # A fleet comes up over seconds, not all at once: the load
                        # processes start a second apart.
                        procs = args.load_processes
                        loads = [[sys.executable, "-m", "statserver.load", "--url", s.url,
                                  "--format", fmt, "--batch", "1", "--connections",
                                  str(conns // procs + (k < conns % procs)), "--stats",
                                  str(seconds), "--rate", "1"] for k in range(procs)]
                        stagger = 1.0
                    rate, cpu = measure(s, loads, total, seconds * 10 + 120, stagger=stagger)
                    res[s.name].append((cpu * s.last_total / 100_000, s.last_total))
        finally:
            for s in servers:
                s.stop()
        print(f" {fmt}:")
        for name, runs in res.items():
            cpus = [c for c, _ in runs]
            med = statistics.median(cpus)
            per_stat = statistics.median(c / n for c, n in runs)
            print(f"  {name:<22} {med:6.2f} CPU s ({per_stat * 1e6:5.0f} µs a stat; "
                  f"runs {', '.join(f'{c:.2f} s for {n} stats' for c, n in runs)})")
        # per stat: a run where connections failed sent fewer
        for a, b in (("statserver", "Go refserver"), ("Twisted floor", "Go refserver"),
                     ("statserver", "Twisted floor")):
            if a in res and b in res:
                ratios = [(x / n) / (y / m)
                          for (x, n), (y, m) in zip(res[a], res[b], strict=True)]
                print(f"  CPU ratio {a} / {b}: {statistics.median(ratios):.2f} (runs "
                      f"{', '.join(f'{x:.2f}' for x in ratios)})")
        print(f"  load average {os.getloadavg()[0]:.1f}", flush=True)
    return 0


def measure(server, load_argv, total, timeout, *, stagger=None):
    """Run one load against ``server``; return (stats/s, server CPU s per 100k stats).
    ``load_argv`` is one command, or with ``stagger`` a list of commands started that
    many seconds apart."""
    base = server.received()
    cpu0 = server.cpu()
    t0 = time.monotonic()
    if stagger is None:
        load = subprocess.run(load_argv, capture_output=True, text=True, timeout=timeout)
        if load.returncode != 0:
            server.fail(f"the load failed ({load.returncode}): {load.stdout}{load.stderr}")
    else:
        loads = []
        for argv in load_argv:
            loads.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True))
            time.sleep(stagger)
        sent = 0
        for load in loads:
            out, _ = load.communicate(timeout=timeout)
            sent += sum(int(n) for n in re.findall(r"^sent (\d+) stats", out, re.M))
            if load.returncode != 0:
                print(f"  warning: {out.strip().splitlines()[-1]}", file=sys.stderr)
        if sent != total:
            print(f"  warning: {sent} of {total} stats sent (connections failed)",
                  file=sys.stderr)
            total = sent
    deadline = time.monotonic() + timeout
    while True:
        got = server.received() - base
        if got >= total:
            break
        if time.monotonic() > deadline:
            server.fail(f"{server.name} received {got:.0f} of {total} stats within {timeout}s")
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    cpu = server.cpu() - cpu0
    if got != total:
        print(f"  warning: {server.name} counted {got:.0f} stats, {total} sent", file=sys.stderr)
    server.last_total = total
    return total / elapsed, cpu / total * 100_000


def python_load(url, scenario, args):
    fmt, conns, per_conn, batch = scenario
    return [sys.executable, "-m", "statserver.load", "--url", url, "--format", fmt,
            "--connections", str(conns), "--stats", str(per_conn), "--batch", str(batch),
            "--processes", str(args.load_processes)]


def go_load(peer_bin, url, scenario):
    fmt, conns, per_conn, batch = scenario
    era = {"gob": "seed", "protobuf": "proto", "json": "json"}[fmt]
    return [str(peer_bin / "activator"), "-url", url, "-era", era, "-conns", str(conns),
            "-n", str(per_conn), "-batch", str(batch)]


def find_peers():
    """The directory of the built Go peers, building them if need be (None if impossible)."""
    env = os.environ.get("STATSERVER_PEER_BIN")
    if env:
        missing = [p for p in ("activator", "refserver") if not (Path(env) / p).is_file()]
        if missing:
            print(f"  STATSERVER_PEER_BIN={env} holds no {', '.join(missing)}", file=sys.stderr)
            return None
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "statserver-peer-bin"
    build = REPO / "peers" / "build.sh"
    print(f"building the Go peers with {build.relative_to(REPO)} into {cache} ...", flush=True)
    r = subprocess.run(["sh", str(build), str(cache), "activator", "refserver"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return cache
    print(f"  cannot build them: {r.stderr.strip()[-500:]}", file=sys.stderr)
    return None


def fmt_row(label, rates, cpus):
    return (f"  {label:<34} {statistics.median(rates):>9,.0f} stats/s   "
            f"{statistics.median(cpus):6.3f} CPU s/100k stats   (median of {len(rates)})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few seconds: a smoke run")
    p.add_argument("--against-go", action="store_true",
                   help="the Go activator against our server and the Go refserver")
    p.add_argument("--repeat", type=int, default=None, help="runs per figure (median)")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--stats", type=int, default=None,
                   help="stats per connection (gob, json; ten times as many for protobuf)")
    p.add_argument("--formats", default="gob,json,protobuf")
    p.add_argument("--batch", type=int, default=100, help="stats per protobuf frame")
    p.add_argument("--load-processes", type=int, default=1)
    p.add_argument("--server-arg", action="append", default=[],
                   help="an extra argument for twist statserver (repeatable)")
    p.add_argument("--profile", metavar="FILE",
                   help="run our server under cProfile, save to FILE, print the top entries")
    p.add_argument("--py-spy", metavar="FILE",
                   help="sample our server with py-spy (raw stacks to FILE), print time by layer")
    p.add_argument("--many", action="store_true",
                   help="many connections at 1 stat/s each, servers pinned to one core")
    p.add_argument("--many-connections", type=int, default=2000)
    p.add_argument("--many-seconds", type=int, default=20)
    p.add_argument("--many-ramp", type=float, default=10.0,
                   help="seconds over which --many's Go load opens its connections")
    p.add_argument("--many-load", choices=("go", "python"), default="go",
                   help="--many's load: the Go activator (when built) or statserver-load")
    args = p.parse_args(argv)
    if args.many:
        print(f"machine: {machine()}", flush=True)
        if args.load_processes == 1:
            args.load_processes = 16
        try:
            return many_connections(args, find_peers())
        finally:
            for path in filter(None, (args.py_spy,)):
                if os.path.exists(path):
                    print(f"\nour server's time by layer (py-spy samples in {path}):")
                    for share, name in layers(path):
                        print(f"  {share:6.1%}  {name}")
    repeat = args.repeat or (1 if args.quick else 3)
    per_conn = args.stats or (500 if args.quick else 25_000)
    timeout = 60 if args.quick else 600
    formats = args.formats.split(",")

    def scenario(fmt):
        # Protobuf frames carry many stats: ten times as many keep the run as long.
        n = per_conn * (10 if fmt == "protobuf" else 1)
        return fmt, args.connections, n, args.batch if fmt == "protobuf" else 1

    print(f"machine: {machine()}", flush=True)
    port = free_port()
    ours = our_server(port, args.server_arg, args.profile, args.py_spy)
    try:
        ours.wait_ready()
        if not args.against_go:
            print(f"statserver-load -> statserver, {args.connections} connections:")
            for fmt in formats:
                sc = scenario(fmt)
                total = sc[1] * sc[2]
                rates, cpus = [], []
                for _ in range(repeat):
                    r, c = measure(ours, python_load(ours.url, sc, args), total, timeout)
                    rates.append(r)
                    cpus.append(c)
                label = f"{fmt} ({total} stats" + (f", {sc[3]} a frame)" if fmt == "protobuf" else ")")
                print(fmt_row(label, rates, cpus), flush=True)
            return 0
        peers = find_peers()
        if peers is None:
            sys.exit("ingest: --against-go needs the Go peers (peers/build.sh)")
        print(f"Go activator -> statserver and -> Go refserver, {args.connections} connections, "
              f"in turn:")
        for fmt in [f for f in formats if f != "json"]:
            sc = scenario(fmt)
            total = sc[1] * sc[2]
            go_port = free_port()
            go = go_server(peers, go_port, "proto" if fmt == "protobuf" else "gob")
            try:
                go.wait_ready()
                res = {"ours": ([], []), "go": ([], [])}
                for _ in range(repeat):
                    for key, srv in (("ours", ours), ("go", go)):
                        r, c = measure(srv, go_load(peers, srv.url, sc), total, timeout)
                        res[key][0].append(r)
                        res[key][1].append(c)
            finally:
                go.stop()
            era = "seed (v10)" if fmt == "gob" else f"{sc[3]} a frame"
            print(f" {fmt}, {era}, {total} stats a run:")
            print(fmt_row("statserver (Python)", *res["ours"]))
            print(fmt_row("Go refserver", *res["go"]))
            ratios = [a / b for a, b in zip(res["ours"][0], res["go"][0], strict=True)]
            print(f"  ratio statserver / Go: {statistics.median(ratios):.2f} "
                  f"(median of per-run ratios {', '.join(f'{x:.2f}' for x in ratios)})",
                  flush=True)
            times = [1 / x for x in ratios]  # the same runs as ingest times: lower is better
            print(f"  ingest-time ratio statserver / Go: {statistics.median(times):.2f} "
                  f"(runs {', '.join(f'{x:.2f}' for x in times)}); load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
        return 0
    finally:
        ours.stop()
        if args.profile and os.path.exists(args.profile):
            import pstats

            print(f"\nour server's profile ({args.profile}), by own time:")
            pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)
        if args.py_spy and os.path.exists(args.py_spy):
            print(f"\nour server's time by layer (py-spy samples in {args.py_spy}):")
            for share, name in layers(args.py_spy):
                print(f"  {share:6.1%}  {name}")


if __name__ == "__main__":
    sys.exit(main())
