"""The aggregator fed Knative's own frames (``$STAT_FRAMES``) at ``Clock`` times, checked
against averages worked out by hand; eviction, the revision cap, options."""

from collections import defaultdict
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from shared_data import ERAS, read_frames, readme_stat, rfc3339_to_ns
from twisted.internet.task import Clock

from statserver.aggregation.aggregator import (
    Aggregator,
    check_aggregation,
    check_max_revisions,
    check_panic_window_percentage,
    check_stable_window,
    panic_window,
)
from statserver.aggregation.collector import AggregateCollector
from statserver.aggregation.windows import compute_smoothing_coeff
from statserver.model import StatMessage

# Every test here runs with Aggregator.record_many in Python and with its compiled part.
pytestmark = pytest.mark.usefixtures("aggregator_record_many")

S = 1_000_000_000
T27 = datetime(2019, 3, 14, 14, 9, 27, tzinfo=timezone.utc).timestamp()  # 1552572567


def frames(name):
    """Each frame's stats (dicts) of a file of ``$STAT_FRAMES``."""
    return [frame["stats"] for frame in read_frames(name)]


def feed_proto_ts(aggregator, clock):
    """The v0.19+ frames (timestamps in whole seconds), each received half a second after
    its stats' time; the clock ends at the last one's."""
    for stats in frames("proto-ts.jsonl"):
        at = rfc3339_to_ns(stats[0]["timestamp"])
        clock.advance(at / S + 0.5 - clock.seconds())
        for d in stats:
            aggregator.record(readme_stat(d, received_at=int(clock.seconds() * S)))


def samples(registry, name):
    """{sorted label items: value} of metric ``name`` as a scrape shows it."""
    text = generate_latest(registry).decode("utf-8")
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def averages(aggregator, namespace, name):
    r = aggregator.revision(namespace, name)
    assert r is not None, f"{namespace}/{name} not tracked"
    return r.stable_concurrency, r.panic_concurrency, r.stable_rps, r.panic_rps


# Per second, for ns-0/rev-0-0 of proto-ts.jsonl: concurrency - proxied, requests - proxied.
REV_0_0 = {  # second of 14:09 -> (concurrency, rps)
    27: (4.0, 0.0), 29: (12.25, 13.0), 30: (45.0, 39.0), 31: (32.75, 26.0),
    32: (86.0, 78.0), 33: (3.25, 52.0), 35: (11.75, 52.0), 36: (44.0, 130.0),
    37: (32.25, 78.0), 38: (85.0, 182.0), 40: (2.75, 4.0), 41: (26.0, 21.0),
    42: (23.25, 17.0), 43: (31.75, 30.0), 45: (84.0, 73.0), 46: (2.25, 43.0),
    47: (25.0, 112.0), 48: (22.75, 69.0), 49: (66.0, 164.0), 51: (43.25, 95.0),
}


def test_rev_0_0_sums_as_worked_out():
    # The table above, checked against the frames themselves.
    sums = defaultdict(lambda: [0.0, 0.0])
    for stats in frames("proto-ts.jsonl"):
        for d in stats:
            if (d["namespace"], d["name"]) == ("ns-0", "rev-0-0"):
                second = (rfc3339_to_ns(d["timestamp"]) // S) - int(T27) + 27
                sums[second][0] += d["average_concurrent_requests"] - d["average_proxied_concurrent_requests"]
                sums[second][1] += d["request_count"] - d["proxied_request_count"]
    assert {k: tuple(v) for k, v in sums.items()} == REV_0_0


def test_linear_averages_of_knative_frames():
    clock = Clock()
    aggregator = Aggregator(clock)  # 60 s stable, 10 % -> 6 s panic, linear
    feed_proto_ts(aggregator, clock)
    assert clock.seconds() == T27 + 24.5  # 14:09:51.5

    # Stable: 25 buckets since the first write (14:09:27..51), total 683.25 and 1278.
    # Panic: the 6 buckets 46..51 (50 empty): 2.25+25+22.75+66+43.25 = 159.25, and
    # 43+112+69+164+95 = 483.
    assert averages(aggregator, "ns-0", "rev-0-0") == (683.25 / 25, 26.541666,
                                                       1278 / 25, 80.5)
    assert 683.25 / 25 == 27.33 and 1278 / 25 == 51.12

    # Three seconds on, no stat: the panic window drops the 3 buckets after the last
    # write (159.25 - 2.25 - 25 - 22.75 = 109.25 over 3), the stable one keeps its 25.
    clock.advance(3)
    # RPS: 483 - 43 - 112 - 69 = 259 over 3, floored to 6 decimals.
    assert averages(aggregator, "ns-0", "rev-0-0") == (27.33, 36.416666, 51.12, 86.333333)
    # Six: nothing left in the panic window.
    clock.advance(3)
    assert averages(aggregator, "ns-0", "rev-0-0") == (27.33, 0.0, 51.12, 0.0)
    r = aggregator.revision("ns-0", "rev-0-0")
    assert r.pods == 1
    assert r.last_stat_time == (int(T27) + 24) * S
    assert len(aggregator) == 7  # rev-0-0 .. rev-0-6


def test_weighted_averages_of_knative_frames():
    clock = Clock()
    aggregator = Aggregator(clock, aggregation="weighted-exponential")
    feed_proto_ts(aggregator, clock)

    def weighted(column, buckets, now):
        # Newest bucket first, weight α(1-α)^i, i counting from `now`; Knative's order.
        alpha = compute_smoothing_coeff(buckets)
        m = alpha
        total = 0.0
        for second in range(now, now - buckets, -1):
            total += REV_0_0.get(second, (0.0, 0.0))[column] * m
            m *= 1 - alpha
        return total

    assert compute_smoothing_coeff(60) == 0.2
    assert averages(aggregator, "ns-0", "rev-0-0") == (
        weighted(0, 60, 51), weighted(0, 6, 51), weighted(1, 60, 51), weighted(1, 6, 51))


def test_received_at_when_the_era_sends_no_time():
    # json.jsonl (v0.16-v0.19 text frames) has no timestamp: the server's time is used.
    clock = Clock()
    clock.advance(T27)
    aggregator = Aggregator(clock)
    for i, stats in enumerate(frames("json.jsonl")):
        if i:
            clock.advance(1)
        for d in stats:
            assert "timestamp" not in d
            aggregator.record(readme_stat(d, received_at=int(clock.seconds() * S)))
    # ns-0/rev-0-0 came at +0 s (0.25, 0 requests) and +35 s (32.75, 26 requests).
    # Stable: 36 buckets since the first write. Panic: reset by the 35 s gap, 1 bucket.
    assert clock.seconds() == T27 + 39
    r = aggregator.revision("ns-0", "rev-0-0")
    # At +39 s, 4 s after the last write. Stable: 0.25 + 32.75 = 33 over
    # min(36 buckets since the first write, 60 - 4). Panic: 32.75 over min(1, 6 - 4).
    assert (r.stable_concurrency, r.panic_concurrency, r.stable_rps, r.panic_rps) == (
        0.916666, 32.75, 0.722222, 26.0)
    assert 33 / 36 == 0.9166666666666666 and 26 / 36 == 0.7222222222222222


def test_each_frame_file_aggregates():
    # Every era's stats aggregate (timestamps where the era has them), one per revision.
    for name in ERAS:
        clock = Clock()
        clock.advance(T27 + 100)
        aggregator = Aggregator(clock)
        expected = set()
        for stats in frames(name):
            for d in stats:
                aggregator.record(readme_stat(d, received_at=int(clock.seconds() * S)))
                expected.add((d["namespace"], d["name"]))
        assert {(r.namespace, r.name) for r in aggregator.revisions()} == expected, name
        assert aggregator.refused_stats == 0


def test_silent_revisions_are_dropped_after_two_windows():
    clock = Clock()
    aggregator = Aggregator(clock, stable_window=6)
    registry = CollectorRegistry()
    registry.register(AggregateCollector(aggregator))
    feed_proto_ts(aggregator, clock)
    assert samples(registry, "statserver_revision_concurrency")[
        (("name", "rev-0-0"), ("namespace", "ns-0"), ("window", "panic"))] == 43.25
    assert samples(registry, "statserver_revision_pods")[
        (("name", "rev-0-0"), ("namespace", "ns-0"))] == 1
    clock.advance(12)  # exactly 2 windows after the last stat: kept
    assert len(aggregator.revisions()) == 7
    clock.advance(0.001)
    assert aggregator.revisions() == []
    assert aggregator.revision("ns-0", "rev-0-0") is None
    assert samples(registry, "statserver_revision_concurrency") == {}
    assert samples(registry, "statserver_aggregation_revisions") == {(): 0}


def test_revision_cap(logged):
    clock = Clock()
    clock.advance(T27)
    aggregator = Aggregator(clock, stable_window=6, max_revisions=3)
    now = int(clock.seconds() * S)
    for i in range(5):
        aggregator.record(StatMessage("ns", f"rev-{i}", "pod", 1.0, 0.0, 1.0, 0.0,
                                      received_at=now))
    aggregator.record(StatMessage("ns", "rev-4", "pod", 1.0, received_at=now))
    assert [r.name for r in aggregator.revisions()] == ["rev-0", "rev-1", "rev-2"]
    assert aggregator.refused_revisions == 3
    # one warning, not one per stat
    assert len(logged.containing("revisions tracked (--max-revisions)")) == 1

    # Once the old ones are silent for two windows, new ones get in.
    clock.advance(13)
    aggregator.record(StatMessage("ns", "rev-9", "pod", 2.0,
                                  received_at=int(clock.seconds() * S)))
    assert [r.name for r in aggregator.revisions()] == ["rev-9"]


def test_pods_in_the_stable_window():
    clock = Clock()
    clock.advance(T27)
    aggregator = Aggregator(clock, stable_window=6)
    now = int(clock.seconds() * S)
    for i, pod in enumerate(["a", "b", "c"]):
        aggregator.record(StatMessage("ns", "rev", pod, 1.0, timestamp=now + i * S,
                                      received_at=now + i * S))
    clock.advance(2)
    assert aggregator.revision("ns", "rev").pods == 3
    clock.advance(4)  # "a" at +0 is 6 s old: out of the window (..., +1 .. +6]
    assert aggregator.revision("ns", "rev").pods == 2


def test_bad_values_are_refused_and_counted():
    clock = Clock()
    aggregator = Aggregator(clock)
    aggregator.record(StatMessage("ns", "rev", "pod", float("nan"), received_at=S))
    aggregator.record(StatMessage("ns", "rev", "pod", 1.0, request_count=float("inf"),
                                  received_at=S))
    aggregator.record(StatMessage("ns", "rev", "pod", 1.0))  # no time at all
    assert aggregator.refused_stats == 3
    assert len(aggregator) == 0


@pytest.mark.parametrize("stable, percentage, seconds", [
    (60, 10, 6), (6, 10, 1), (7, 50, 4), (9, 5, 1), (3600, 1, 36), (6, 100, 6), (61, 10, 6),
    (65, 10, 7),
])
def test_panic_window_as_knative_makes_it(stable, percentage, seconds):
    assert panic_window(stable, percentage) == seconds * S


@pytest.mark.parametrize("check, good, bad", [
    (check_stable_window, [("6", 6), ("3600", 3600), (60.0, 60)], ["5", "3601", "6.5", "x", None]),
    (check_panic_window_percentage, [("1", 1.0), ("100", 100.0), ("12.5", 12.5)],
     ["0.99", "101", "nan", "x"]),
    (check_aggregation, [("linear", "linear"), ("weighted-exponential", "weighted-exponential")],
     ["Linear", "ewma", ""]),
    (check_max_revisions, [("1", 1), (" 10000 ", 10000), (3, 3)], ["0", "-1", "1.5", "x"]),
])
def test_options_validated_like_knative(check, good, bad):
    for given, want in good:
        assert check(given) == want
    for given in bad:
        with pytest.raises(ValueError):
            check(given)



def test_a_stat_stamped_far_ahead_does_not_pin_the_averages():
    # one stat stamped in 2100 with 1000 concurrent requests, then the real sender's 2.0
    # every second: the averages follow the real sender within two stable windows
    clock = Clock()
    clock.advance(T27)
    aggregator = Aggregator(clock, stable_window=6)
    year_2100 = 4_102_444_800 * S
    now = int(clock.seconds() * S)
    aggregator.record(StatMessage("ns", "rev", "pod", 1000.0, timestamp=year_2100,
                                  received_at=now))
    for _ in range(13):
        clock.advance(1)
        now = int(clock.seconds() * S)
        aggregator.record(StatMessage("ns", "rev", "pod", 2.0, timestamp=now, received_at=now))
    got = aggregator.revision("ns", "rev")
    assert (got.stable_concurrency, got.panic_concurrency) == (2.0, 2.0)
    assert got.last_stat_time == now
    assert (aggregator.skewed_ahead, aggregator.skewed_behind) == (1, 0)


@pytest.mark.parametrize("offset,placed_at_sender_time", [
    (5 * S, True), (5 * S + 1, False), (-5 * S, True), (-5 * S - 1, False)])
def test_max_clock_skew_bounds_both_ways(offset, placed_at_sender_time):
    clock = Clock()
    clock.advance(T27)
    aggregator = Aggregator(clock, max_clock_skew=5)
    received = int(clock.seconds() * S)
    aggregator.record(StatMessage("ns", "rev", "pod", 1.0, timestamp=received + offset,
                                  received_at=received))
    [revision] = aggregator.revisions()
    assert revision.last_stat_time == (received + offset if placed_at_sender_time
                                       else received)
    assert aggregator.skewed_ahead + aggregator.skewed_behind == (
        0 if placed_at_sender_time else 1)
