"""Consumer benchmark: µs per stat from the server's queue through the command's sinks.

Times ``StatsConsumer`` taking stats already queued on the server's ``StatsQueue`` and
handing each to: no sink, the per-minute ``Summary``, the windowed ``Aggregator``, both (the
command's default sinks), the ``StatsLog`` (a file in a temporary directory, written as it
would be every second, by its writer thread; the time includes waiting for that thread
to finish) and all three, against ``StatMessage.to_json()`` alone. Medians of
``--repeat`` runs; ratios are to ``to_json()`` in the same run.

    python benchmarks/sinks.py [--stats 100000] [--repeat 5]
"""

import argparse
import queue as _queue
import statistics
import tempfile
import time
from pathlib import Path

from _bench import machine
from twisted.internet.task import Clock

from statserver.aggregation.aggregator import Aggregator
from statserver.model import StatMessage
from statserver.server.service import StatsQueue
from statserver.sinks.consumer import StatsConsumer
from statserver.sinks.statslog import StatsLog
from statserver.sinks.summary import Summary


def make_stats(n):
    t = 1_700_000_000_000_000_000
    return [
        StatMessage(
            f"ns-{i % 10}", f"rev-{i % 300}", f"activator-{i % 20}",
            average_concurrent_requests=1.25, average_proxied_concurrent_requests=0.5,
            request_count=3.0, proxied_request_count=1.0, process_uptime=120.5,
            timestamp=t + i, received_at=t + i + 1000,
        )  # fmt: skip
        for i in range(n)
    ]


class ThreadClock(Clock):
    """A ``Clock`` that also takes the stats log writer's ``callFromThread`` calls, run
    by ``run_thread_calls``."""

    def __init__(self):
        super().__init__()
        self._from_thread = _queue.SimpleQueue()

    def callFromThread(self, f, *args, **kwargs):
        self._from_thread.put((f, args, kwargs))

    def run_thread_calls(self):
        while not self._from_thread.empty():
            f, args, kwargs = self._from_thread.get()
            f(*args, **kwargs)


def time_to_json(stats):
    start = time.perf_counter()
    for s in stats:
        s.to_json()
    return time.perf_counter() - start


def time_consumer(stats, make_sinks, batch):
    """Stats queued ``batch`` at a time (the server pauses its connections at
    ``--queue-size``), taken by a running consumer."""
    clock = ThreadClock()
    queue = StatsQueue(lambda: None)
    sinks = make_sinks(clock)
    consumer = StatsConsumer(queue, sinks, clock=clock)
    consumer.startService()
    start = time.perf_counter()
    for i in range(0, len(stats), batch):
        # A burst: the first stat goes to the consumer's waiting get(), the rest wait
        # for its next turn.
        queue.put_many(stats[i:i + batch])
        clock.advance(1.0)  # the next turn, and the stats log's periodic hand-over
        clock.run_thread_calls()  # what the writer thread says it wrote
    consumer.stopService()  # hands over the rest and closes the stats log
    for sink in sinks:
        if isinstance(sink, StatsLog):
            sink._thread.join()
    clock.run_thread_calls()
    elapsed = time.perf_counter() - start
    assert consumer.recorded == len(stats), consumer.recorded
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10_000, help="stats queued at once")
    args = parser.parse_args()
    stats = make_stats(args.stats)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "stats.jsonl")
        cases = {
            "no sink": lambda clock: [],
            "summary": lambda clock: [Summary(reactor=clock)],
            "aggregator": lambda clock: [Aggregator(clock)],
            "summary + aggregator": lambda clock: [Summary(reactor=clock), Aggregator(clock)],
            "stats log": lambda clock: [StatsLog(path, reactor=clock)],
            "all three": lambda clock: [
                Summary(reactor=clock), Aggregator(clock), StatsLog(path, reactor=clock)],
        }
        runs = {name: [] for name in ["to_json() alone", *cases]}
        for _ in range(args.repeat):
            runs["to_json() alone"].append(time_to_json(stats))
            for name, make in cases.items():
                runs[name].append(time_consumer(stats, make, args.batch))
    print(f"{machine()}; {args.stats} stats queued {args.batch} at a time, "
          f"median of {args.repeat} runs")
    base = statistics.median(runs["to_json() alone"])
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"{name:22s} {median / args.stats * 1e6:7.2f} µs/stat  "
              f"{args.stats / median:10.0f} stats/s  {median / base:5.2f}x to_json()")


if __name__ == "__main__":
    main()
