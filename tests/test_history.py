"""The dashboard's history: bounded length per revision, revisions forgotten with the
aggregator, bounded bytes, the options that change or disable it."""

import tracemalloc

import pytest
from twisted.python import usage

from statserver.aggregation.aggregator import RevisionAverages
from statserver.dashboard.history import DEFAULT_LENGTH, DEFAULT_RESOLUTION, History, check_history
from statserver.tap import Options


def averages(i, value):
    return RevisionAverages(f"ns-{i % 7}", f"rev-{i}", value, value * 2, value / 2, value,
                            1, 0)


def test_each_revision_keeps_at_most_length_over_resolution_samples():
    history = History(length=30, resolution=5)
    assert history.size == 6
    for t in range(20):
        history.sample(1000.0 + 5 * t, [averages(i, float(t)) for i in range(3)], {})
    assert list(history.times) == [1000.0 + 5 * t for t in range(14, 20)]
    samples = history.revision("ns-1", "rev-1")
    assert samples == [[float(t) for t in range(14, 20)], [2.0 * t for t in range(14, 20)],
                       [t / 2 for t in range(14, 20)], [float(t) for t in range(14, 20)]]
    assert all(len(values) == 6 for values in history.server.values())


def test_a_new_revision_has_no_figures_before_it_appeared_and_a_gone_one_is_forgotten():
    history = History(length=4, resolution=1)
    history.sample(1.0, [averages(0, 1.0)], {})
    history.sample(2.0, [averages(0, 2.0), averages(1, 5.0)], {})
    assert history.revision("ns-1", "rev-1")[0] == [None, 5.0]
    history.sample(3.0, [averages(1, 6.0)], {})  # rev-0 dropped by the aggregator
    assert history.revision("ns-0", "rev-0") is None
    assert len(history) == 1
    history.sample(4.0, [averages(0, 9.0), averages(1, 7.0)], {})  # back: a fresh start
    assert history.revision("ns-0", "rev-0")[0] == [None, None, None, 9.0]


def test_non_finite_figures_are_kept_as_none():
    history = History(length=2, resolution=1)
    history.sample(1.0, [averages(0, float("inf"))], {})
    assert history.revision("ns-0", "rev-0")[0] == [None]


def test_due_once_per_resolution():
    history = History(length=20, resolution=5)
    assert history.due(100.0)
    history.sample(100.0, [], {})
    assert not history.due(104.0)
    assert history.due(105.0)


def test_zero_length_keeps_nothing():
    history = History(length=0, resolution=5)
    assert not history.enabled and not history.due(1.0)
    history.sample(1.0, [averages(0, 1.0)], {"connections": 1})
    assert len(history) == 0 and not history.times
    assert history.revision("ns-0", "rev-0") is None


@pytest.mark.parametrize("length, resolution", [(DEFAULT_LENGTH, DEFAULT_RESOLUTION), (600, 10),
                                                (60, 1)])
def test_memory_per_revision_is_within_the_stated_bound(length, resolution):
    history = History(length=length, resolution=resolution)
    count = 2000
    revisions = [averages(i, 1.0) for i in range(count)]  # names made before measuring
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for t in range(history.size + 3):  # the ring wraps
            history.sample(float(t * resolution), revisions, {})
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used / count <= history.bytes_per_revision()
    # and it is mostly the samples themselves
    assert used / count >= 16 * history.size


def test_check_history():
    assert check_history("300", "5") == (300, 5)
    assert check_history(0, 5) == (0, 5)
    for length, resolution, why in [(7, 5, "multiple"), (60, 0, "at least 1s"),
                                    (-5, 5, r"0 \(off\)"), (90000, 5, "86400"),
                                    ("1m", 5, "whole seconds")]:
        with pytest.raises(ValueError, match=why):
            check_history(length, resolution)


def test_options():
    options = Options()
    options.parseOptions(["--port", "tcp:0", "--history-length", "600",
                          "--history-resolution", "10"])
    assert (options["history-length"], options["history-resolution"]) == (600, 10)
    assert not options["no-dashboard"]
    options = Options()
    options.parseOptions(["--port", "tcp:0", "--history-length", "0", "--no-dashboard"])
    assert options["history-length"] == 0 and options["no-dashboard"]
    with pytest.raises(usage.UsageError, match="multiple of the resolution"):
        Options().parseOptions(["--port", "tcp:0", "--history-length", "7"])
