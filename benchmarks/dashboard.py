"""The dashboard with 10,000 revisions: the server's cost per snapshot and the page's first
render in headless Chromium.

1. In process (no reactor): an ``Aggregator`` holding N revisions, a ``StatsServer`` (not
   listening) and a ``Dashboard``; the time to build one snapshot (read every revision's
   averages, encode the JSON once), with and without a history sample, and its size.
2. End to end: ``twist statserver`` in a subprocess, N revisions sent to it over one
   WebSocket (protobuf, 100 stats a frame), then Debian's Chromium (headless, through
   Selenium and ``/usr/bin/chromedriver``) loads ``/dashboard/`` ``--loads`` times, each
   in a fresh browser, then ``--loads`` times more as reloads of one browser. First render
   = the page's ``statserver-first-render`` mark (set once the first snapshot is on
   screen), in ms since navigation start (``statserver-first-snapshot``: when it arrived).
   Then the page's own parse + render time of each later snapshot, and the time to scroll
   to the middle of the table and draw.

    python benchmarks/dashboard.py [--revisions 10000] [--loads 5] [--repeat 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

from _bench import REPO, machine

sys.path.insert(0, str(REPO / "tests"))  # the browser helpers of the tests


def build_cost(revisions, repeat):
    from twisted.internet.task import Clock

    from statserver.aggregation.aggregator import Aggregator
    from statserver.dashboard import Dashboard
    from statserver.dashboard.history import History
    from statserver.model import StatMessage
    from statserver.server.service import StatsServer

    clock = Clock()
    clock.advance(1_800_000_000)
    aggregator = Aggregator(clock, max_revisions=revisions)
    now_ns = int(clock.seconds() * 1e9)
    for i in range(revisions):
        for second in range(3):
            at = now_ns - (3 - second) * 1_000_000_000
            aggregator.record(StatMessage(f"namespace-{i % 100:03d}", f"revision-{i:05d}",
                                          f"activator-{i % 3}", 1.0 + i % 17, 0.0, 5.0, 0.0,
                                          timestamp=at, received_at=at))
    server = StatsServer(endpoint=None, reactor=clock)
    history = History()
    dashboard = Dashboard(server, aggregator, reactor=clock, history=history)
    plain, sampled, steps = [], [], []
    dashboard.build_now(clock.seconds(), True)  # the history's arrays allocated once
    for _ in range(repeat):
        clock.advance(history.resolution)
        size = len(dashboard.build_now(clock.seconds(), False))
        plain.append(dashboard.snapshot_cost)
        steps.append(dashboard.longest_step)
        dashboard.build_now(clock.seconds(), True)
        sampled.append(dashboard.snapshot_cost)
        steps.append(dashboard.longest_step)
    revisions_ms = []
    for _ in range(repeat):
        t = time.perf_counter()
        aggregator.revisions()
        revisions_ms.append(time.perf_counter() - t)
    return (statistics.median(plain), statistics.median(sampled), max(steps),
            statistics.median(revisions_ms), size, history.bytes_per_revision())


def start_server(revisions):
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    twist = [sys.executable, "-m", "twisted", "statserver", "--port",
             "tcp:0:interface=127.0.0.1", "--max-revisions", str(revisions)]
    process = subprocess.Popen(twist, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=env, cwd=str(REPO))
    deadline = time.monotonic() + 60
    for line in process.stdout:
        try:
            record = json.loads(line.decode().lstrip("\x1e"))
        except ValueError:
            continue
        if record.get("log_namespace") == "statserver.tap" and "port" in record:
            return process, record["port"]
        if time.monotonic() > deadline:
            break
    process.kill()
    raise SystemExit("the server did not start")


def send_revisions(port, revisions):
    """Send one stat for each of ``revisions`` revisions (100 a frame) over one WebSocket,
    with the load generator's own client code; wait until the API lists them all."""
    from twisted.internet import defer, reactor, task
    from wsclient import connect

    from statserver.model import StatMessage
    from statserver.wire import encode_protobuf

    async def main():
        client = await connect(port)
        now = time.time_ns()
        for first in range(0, revisions, 100):
            client.send_frame(encode_protobuf([
                StatMessage(f"namespace-{i % 100:03d}", f"revision-{i:05d}", f"activator-{i % 3}",
                            1.0 + i % 17, 0.0, 5.0, 0.0, timestamp=now)
                for i in range(first, min(revisions, first + 100))]))
        return client

    result = {}

    def run(_):
        d = defer.Deferred.fromCoroutine(main())
        d.addCallback(lambda client: result.setdefault("client", client))
        d.addErrback(lambda f: result.setdefault("error", f))
        d.addBoth(lambda _: task.deferLater(reactor, 0.5, reactor.stop))

    reactor.callWhenRunning(run, None)
    reactor.run()
    if "error" in result:
        raise SystemExit(f"cannot send: {result['error'].getErrorMessage()}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/revisions") as r:
            if len(json.loads(r.read())["revisions"]) >= revisions:
                return
        time.sleep(0.2)
    raise SystemExit("the revisions did not all arrive")


FIRST_RENDER = "return performance.getEntriesByName('statserver-first-render')"
SNAPSHOT = "return performance.getEntriesByName('statserver-first-snapshot')[0].startTime"


def first_render(driver, port):
    """Load the page; ms from navigation start to the first snapshot received and to it
    drawn."""
    from browser import wait_for

    driver.get(f"http://127.0.0.1:{port}/dashboard/")
    wait_for(driver, lambda d: d.execute_script(FIRST_RENDER + ".length"), 30)
    return (driver.execute_script(SNAPSHOT),
            driver.execute_script(FIRST_RENDER + "[0].startTime"))


def browser_figures(port, loads):
    from browser import missing, start_browser, wait_for

    reason = missing()
    if reason:
        raise SystemExit(f"no browser: {reason}")
    cold = []
    for _ in range(loads):  # a fresh Chromium for each load
        driver = start_browser()
        try:
            cold.append(first_render(driver, port))
        finally:
            driver.quit()
    driver = start_browser()
    try:
        first_render(driver, port)
        warm = [first_render(driver, port) for _ in range(loads)]  # reloads
        rows = driver.execute_script(
            "return document.querySelectorAll('#revisions-rows .row').length")
        # the page's own time per later snapshot (parse + render), over 10 snapshots
        wait_for(driver, lambda d: d.execute_script(
            "return window.statserverDashboard.state.renderMs.length") >= 11, 30)
        updates = driver.execute_script("return window.statserverDashboard.state.renderMs")[1:]
        scroll = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const box = document.getElementById('revisions-viewport'), t = performance.now();
            box.scrollTop = box.scrollHeight / 2;
            requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t)));
        """)
        total = driver.execute_script("return window.statserverDashboard.state.rows.length")
    finally:
        driver.quit()
    return cold, warm, rows, total, updates, scroll


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=10000)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    plain, sampled, step, revisions_s, size, per_revision = build_cost(args.revisions,
                                                                        args.repeat)
    print(f"server, {args.revisions} revisions (medians of {args.repeat}):")
    print(f"  snapshot: {plain * 1e3:.1f} ms to build, in steps (Aggregator.revisions() alone:"
          f" {revisions_s * 1e3:.1f} ms), {size / 1e6:.2f} MB of JSON, sent as is to every viewer")
    print(f"  snapshot with a history sample: {sampled * 1e3:.1f} ms")
    print(f"  longest step the reactor runs at once (of {2 * args.repeat} builds): "
          f"{step * 1e3:.1f} ms")
    print(f"  history: {per_revision} bytes per revision at the defaults,"
          f" {per_revision * args.revisions / 1e6:.1f} MB for {args.revisions}")
    process, port = start_server(args.revisions)
    try:
        send_revisions(port, args.revisions)
        cold, warm, rows, total, updates, scroll = browser_figures(port, args.loads)
    finally:
        process.terminate()
        process.wait(30)
    print(f"page, headless Chromium, {total} revisions, {rows} rows in the DOM;"
          f" ms from navigation start to the first snapshot received / drawn:")
    for label, runs in (("fresh browser", cold), ("reload", warm)):
        print(f"  first render, {label}: median {statistics.median(r[1] for r in runs):.0f} ms,"
              f" max {max(r[1] for r in runs):.0f} (runs: "
              f"{', '.join(f'{s:.0f}/{r:.0f}' for s, r in runs)})")
    print(f"  each later snapshot (parse + render): median {statistics.median(updates):.0f} ms,"
          f" max {max(updates):.0f} ms")
    print(f"  scroll to the middle and draw: {scroll:.0f} ms")


if __name__ == "__main__":
    main()
