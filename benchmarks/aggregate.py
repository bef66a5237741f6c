"""Aggregation benchmark: µs that the ``Aggregator`` sink adds per stat.

Stats are built beforehand and fed in lists of 100 to ``record_many``, as the consumer
hands over what a reactor turn brought; the same loop calling a sink that does nothing is
timed too and subtracted, so the figure is what the aggregation sink adds to the
consumer. Scenarios (each run in both algorithms, median of ``--repeat`` runs):

- 1 stat per revision per second (one activator): every stat opens a new bucket;
- 10 stats per revision per second (ten activators): most stats add to an open bucket;
- 10,000 revisions: the cost must not grow with the number of revisions.

Also the cost of reading every revision's averages (a ``/metrics`` scrape) per revision.

    python benchmarks/aggregate.py [--repeat 5] [--quick]
"""

import argparse
import statistics
import time

from _bench import machine
from twisted.internet.task import Clock

from statserver.aggregation.aggregator import Aggregator
from statserver.model import StatMessage

S = 1_000_000_000
T0 = 1_700_000_000


def stats(revisions, per_second, seconds):
    """Stats of ``revisions`` revisions, ``per_second`` pods each, over ``seconds``."""
    out = []
    for second in range(seconds):
        for pod in range(per_second):
            for r in range(revisions):
                at = (T0 + second) * S + pod * 1_000_000 + r
                out.append(StatMessage(f"ns-{r % 10}", f"rev-{r}", f"activator-{pod}",
                                       3.5 + pod, 0.5, 10.0 + r % 7, 2.0, received_at=at))
    return out


BATCH = 100


class Nothing:
    def record_many(self, stats):
        pass


def run_once(sink, feed):
    batches = [feed[i:i + BATCH] for i in range(0, len(feed), BATCH)]
    record_many = sink.record_many
    t = time.perf_counter()
    for batch in batches:
        record_many(batch)
    return time.perf_counter() - t


def added_us(feed, first, aggregation, repeat):
    """Median over ``repeat`` runs of (aggregator - empty sink) µs per stat, after the
    ``first`` stats (every revision's first, timed apart: they create the revision)."""
    runs = []
    creating = []
    warm, timed = feed[:first], feed[first:]
    for _ in range(repeat):
        clock = Clock()
        clock.advance(T0)
        aggregator = Aggregator(clock, aggregation=aggregation)
        creating.append((run_once(aggregator, warm) - run_once(Nothing(), warm))
                        / len(warm) * 1e6)
        base = run_once(Nothing(), timed)
        took = run_once(aggregator, timed)
        runs.append((took - base) / len(timed) * 1e6)
    return statistics.median(runs), min(runs), max(runs), statistics.median(creating)


def read_us(revisions, aggregation):
    """µs per revision to read every revision's averages (what a scrape costs)."""
    clock = Clock()
    clock.advance(T0)
    aggregator = Aggregator(clock, aggregation=aggregation)
    for stat in stats(revisions, 1, 60):
        aggregator.record(stat)
    clock.advance(60.5)
    t = time.perf_counter()
    aggregator.revisions()
    return (time.perf_counter() - t) / revisions * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small feeds, one run")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    seconds = 3 if args.quick else 30
    scenarios = [  # label, stats, how many are first stats of a revision
        ("100 revisions, 1 stat/s each", stats(100, 1, seconds * 10 + 1), 100),
        ("100 revisions, 10 stats/s each", stats(100, 10, seconds + 1), 100),
        ("10,000 revisions, 1 stat/s each", stats(10_000, 1, max(2, seconds // 5) + 1), 10_000),
    ]
    print(f"machine: {machine()}")
    print(f"µs added per stat by Aggregator.record_many (median of {repeat}; min-max; "
          "a revision's first stat apart):")
    creating = []
    for aggregation in ("linear", "weighted-exponential"):
        for label, feed, first in scenarios:
            median, low, high, create = added_us(feed, first, aggregation, repeat)
            creating.append(create)
            print(f"  {aggregation:21} {label:32} {median:6.2f} µs  ({low:.2f}-{high:.2f}, "
                  f"{len(feed) - first:,} stats)")
    print(f"  a revision's first stat (creates its windows): {statistics.median(creating):.1f} µs")
    revisions = 100 if args.quick else 1000
    for aggregation in ("linear", "weighted-exponential"):
        print(f"  read ({aggregation}, stable 60 s, {revisions} revisions): "
              f"{read_us(revisions, aggregation):.1f} µs per revision")


if __name__ == "__main__":
    main()
