"""The per-minute summary line: stats, pods, revisions and decode errors."""

import pytest
from prometheus_client import CollectorRegistry, Counter
from twisted.internet.task import Clock
from twisted.logger import formatEvent

from statserver.model import StatMessage
from statserver.sinks.summary import Summary

# Every test here runs on both implementations of the set updates.
pytestmark = pytest.mark.usefixtures("summary_add_stats")


@pytest.fixture
def lines(logged):
    """The summary's log lines so far (a function)."""
    return lambda: [formatEvent(e) for e in logged if e.get("log_namespace") == "statserver.sinks.summary"]


def test_one_line_a_minute(lines):
    registry = CollectorRegistry()
    errors = Counter("statserver_decode_errors", "bad frames", ["format"], registry=registry)
    errors.labels("gob").inc(4)  # before the summary starts: not in any minute
    clock = Clock()
    summary = Summary(registry=registry, reactor=clock)
    summary.start()
    for pod in ("activator-0", "activator-1"):
        for rev in ("a", "b", "c"):
            summary.record(StatMessage("ns", rev, pod))
    summary.record(StatMessage("other-ns", "a", "activator-0"))
    errors.labels("gob").inc()
    errors.labels("json").inc(2)
    clock.advance(59)
    assert lines() == []
    clock.advance(1)
    assert lines() == ["last 60s: 7 stats from 2 pods for 4 revisions, 3 decode errors"]
    clock.advance(60)  # a quiet minute
    assert lines()[-1] == "last 60s: 0 stats from 0 pods for 0 revisions, 0 decode errors"
    summary.record(StatMessage("ns", "a", "activator-9"))
    clock.advance(30)
    summary.close()  # the part-minute before shutdown
    assert lines()[-1] == "last 30s: 1 stats from 1 pods for 1 revisions, 0 decode errors"
    assert len(lines()) == 3
    clock.advance(60)
    assert len(lines()) == 3  # stopped


def test_without_a_registry():
    clock = Clock()
    summary = Summary(reactor=clock)
    summary.start()
    summary.record(StatMessage("ns", "a", ""))
    assert summary.report() == {
        "seconds": 0, "stats": 1, "pods": 0, "revisions": 1, "decode_errors": 0
    }
    summary.close()


def test_a_list_at_once_counts_as_one_by_one():
    stats = [StatMessage("ns", rev, pod) for rev in "abc" for pod in ("p-0", "", "p-1")]
    stats.append(StatMessage("other", "a", "p-0"))
    one_by_one, at_once = Summary(reactor=Clock()), Summary(reactor=Clock())
    for s in stats:
        one_by_one.record(s)
    at_once.record_many(stats[:4])
    at_once.record_many(stats[4:])
    assert at_once.report() == one_by_one.report() == {
        "seconds": 0, "stats": 10, "pods": 2, "revisions": 4, "decode_errors": 0
    }


def test_a_broken_collector_does_not_stop_the_summary(lines):
    registry = CollectorRegistry()

    class Broken:
        def collect(self):
            raise RuntimeError("collector broke")

    clock = Clock()
    summary = Summary(registry=registry, reactor=clock)
    summary.start()
    broken = Broken()
    registry.register(broken)
    clock.advance(60)
    assert lines() == ["cannot log the summary"]  # with the traceback
    registry.unregister(broken)
    summary.record(StatMessage("ns", "a", "p"))
    clock.advance(60)
    assert lines()[-1] == "last 60s: 1 stats from 1 pods for 1 revisions, 0 decode errors"
    summary.close()


def test_closing_twice_or_unstarted_logs_no_extra_line(lines):
    clock = Clock()
    Summary(reactor=clock).close()  # never started: no minute to tell of
    assert lines() == []
    summary = Summary(reactor=clock)
    summary.start()
    summary.record(StatMessage("ns", "a", "activator-0"))
    clock.advance(10)
    summary.close()
    summary.close()
    assert lines() == ["last 10s: 1 stats from 1 pods for 1 revisions, 0 decode errors"]
