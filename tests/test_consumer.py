"""StatsConsumer: every stat to every sink, in order; failing sinks; drain on stop."""

import pytest
from prometheus_client import CollectorRegistry
from stats import nth
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.task import Clock

from statserver.server.service import StatsQueue
from statserver.sinks.base import Sink
from statserver.sinks.consumer import MAX_BATCH, StatsConsumer


class Recorder(Sink):
    """A sink that keeps what it is given and how it was opened and closed."""

    def __init__(self, events=None, name=None):
        self.stats = []
        self.events = [] if events is None else events
        if name:
            self.name = name

    def start(self):
        self.events.append(("start", self))

    def record(self, s):
        self.stats.append(s)
        self.events.append(("record", self))

    def close(self):
        self.events.append(("close", self))


class Broken(Sink):
    name = "broken"

    def __init__(self, fail_on):
        self.fail_on = fail_on
        self.stats = []

    def record(self, s):
        if s.name in self.fail_on:
            raise ValueError(f"cannot take {s.name}")
        self.stats.append(s)


def test_every_stat_to_every_sink_in_order():
    queue = DeferredQueue()
    first, second = Recorder(), Recorder()
    clock = Clock()
    consumer = StatsConsumer(queue, [first, second], clock=clock)
    queue.put(nth(0))  # queued before the consumer starts
    consumer.startService()
    for i in range(1, 5):
        queue.put(nth(i))
    # the first put wakes the consumer; what follows in the same reactor turn waits
    # for the next one
    assert first.stats == [nth(0), nth(1)]
    clock.advance(0)
    assert first.stats == [nth(i) for i in range(5)]
    assert second.stats == first.stats
    assert consumer.recorded == 5
    assert not queue.pending


def test_many_queued_stats_do_not_recurse():
    queue = DeferredQueue()
    sink = Recorder()
    for i in range(20000):
        queue.put(nth(i))
    clock = Clock()
    consumer = StatsConsumer(queue, [sink], clock=clock, turn_budget=0)
    consumer.startService()
    # a slice of MAX_BATCH a reactor turn (turn_budget 0: one slice's work a turn), so that a full queue never holds the reactor;
    # the rest waits for the next turn (a Clock runs those turns in one advance)
    assert len(sink.stats) == MAX_BATCH
    assert len(queue.pending) == 20000 - MAX_BATCH
    assert [c.getTime() for c in clock.getDelayedCalls()] == [0]
    clock.advance(0)
    assert sink.stats == [nth(i) for i in range(20000)]


def test_a_failing_sink_is_logged_and_counted_and_hurts_no_one(logged):
    queue = DeferredQueue()
    registry = CollectorRegistry()
    broken, good = Broken({"rev-1", "rev-2"}), Recorder()
    clock = Clock()
    consumer = StatsConsumer(queue, [broken, good], registry=registry, clock=clock)
    consumer.startService()
    for i in range(4):
        queue.put(nth(i))
    clock.advance(0)
    assert good.stats == [nth(i) for i in range(4)]
    assert broken.stats == [nth(0), nth(3)]
    assert consumer.sink_errors == {"broken": 2}
    assert registry.get_sample_value("statserver_sink_errors_total", {"sink": "broken"}) == 2
    # The first failure is logged with its traceback, the next one within a minute is not.
    failures = [e for e in logged if "log_failure" in e]
    assert len(failures) == 1
    assert "cannot take rev-1" in failures[0]["log_failure"].getErrorMessage()
    assert failures[0]["sink"] == "broken"
    clock.advance(60)
    queue.put(nth(1))
    assert len([e for e in logged if "log_failure" in e]) == 2
    assert consumer.sink_errors == {"broken": 3}


def test_a_stats_queue_is_taken_a_batch_a_turn():
    taken = []
    queue = StatsQueue(lambda: taken.append(len(queue.pending)))
    sink = Recorder()
    clock = Clock()
    consumer = StatsConsumer(queue, [sink], clock=clock)
    consumer.startService()
    queue.put_many([nth(0), nth(1), nth(2)])  # a frame: the first wakes the consumer
    queue.put_many([nth(3)])
    assert sink.stats == [nth(0)]
    assert list(queue.pending) == [nth(1), nth(2), nth(3)]
    clock.advance(0)
    assert sink.stats == [nth(i) for i in range(4)]
    assert not queue.pending
    # the server heard of each take: the waiting get(), one batch, the next get()
    assert taken == [0, 0, 0]
    assert queue.take_all() == []


def test_a_sink_with_record_many_gets_lists():
    class Many(Recorder):
        def record_many(self, stats):
            if any(s.name == "rev-4" for s in stats):
                raise ValueError("cannot take rev-4")
            self.events.append(list(stats))

    queue = StatsQueue(lambda: None)
    registry = CollectorRegistry()
    many, one = Many(name="many"), Recorder()
    clock = Clock()
    consumer = StatsConsumer(queue, [many, one], registry=registry, clock=clock)
    consumer.startService()
    queue.put_many([nth(0), nth(1), nth(2)])
    clock.advance(0)
    queue.put_many([nth(3), nth(4)])
    clock.advance(0)
    assert many.events[1:] == [[nth(0)], [nth(1), nth(2)], [nth(3)]]
    assert one.stats == [nth(i) for i in range(5)]
    # a list that fails counts whole: rev-4's list is [nth(4)] alone here
    assert consumer.sink_errors == {"many": 1}
    queue.put(nth(5))
    queue.put_many([nth(6), nth(4)])
    clock.advance(0)
    assert consumer.sink_errors == {"many": 3}
    assert registry.get_sample_value("statserver_sink_errors_total", {"sink": "many"}) == 3
    assert consumer.recorded == 8


def test_stop_drains_then_closes_sinks():
    queue = DeferredQueue()
    events = []
    first, second = Recorder(events), Recorder(events)
    consumer = StatsConsumer(queue, [first, second], clock=Clock())
    consumer.startService()
    assert events == [("start", first), ("start", second)]
    queue.put(nth(0))
    # What the server queued while it was stopping, not yet taken:
    queue.pending.extend([nth(1), nth(2)])
    d = consumer.stopService()
    assert d.called
    assert first.stats == [nth(0), nth(1), nth(2)]
    assert events[-2:] == [("close", first), ("close", second)]
    assert all(kind != "close" for kind, _ in events[:-2])
    # Stopped: nothing more is taken.
    queue.put(nth(3))
    assert first.stats == [nth(0), nth(1), nth(2)]
    assert list(queue.pending) == [nth(3)]
    assert not queue.waiting


def test_stop_waits_for_a_sink_that_closes_slowly():
    queue = DeferredQueue()
    closing = Deferred()

    class Slow(Recorder):
        def close(self):
            return closing

    consumer = StatsConsumer(queue, [Slow()], clock=Clock())
    consumer.startService()
    d = consumer.stopService()
    assert not d.called
    closing.callback(None)
    assert d.called


def test_a_sink_that_fails_to_close_does_not_stop_the_others(logged):
    queue = DeferredQueue()

    class BadClose(Recorder):
        def close(self):
            raise OSError("disk gone")

    good = Recorder()
    consumer = StatsConsumer(queue, [BadClose(), good], clock=Clock())
    consumer.startService()
    results = []
    consumer.stopService().addBoth(results.append)
    assert results == [None]
    assert good.events[-1] == ("close", good)
    assert any("disk gone" in e["log_failure"].getErrorMessage() for e in logged if "log_failure" in e)


def test_every_sink_of_the_command_provides_isink(tmp_path):
    from twisted.internet.task import Clock
    from zope.interface.verify import verifyObject

    from statserver.aggregation.aggregator import Aggregator
    from statserver.interfaces import ISink
    from statserver.sinks.statslog import StatsLog
    from statserver.sinks.summary import Summary

    clock = Clock()
    for sink in (Summary(reactor=clock, decode_errors=lambda: 0),
                 StatsLog(str(tmp_path / "log"), reactor=clock), Aggregator(clock), Recorder()):
        assert verifyObject(ISink, sink)


def test_a_sink_that_does_not_provide_isink_is_refused_at_once():
    class Duck:
        def record(self, stat):
            pass

    with pytest.raises(TypeError, match="does not provide ISink"):
        StatsConsumer(DeferredQueue(), [Duck()], clock=Clock())


def test_a_failing_sink_without_a_registry_is_still_counted_and_logged(logged):
    queue = DeferredQueue()
    broken, good = Broken({"rev-0"}), Recorder()
    clock = Clock()
    consumer = StatsConsumer(queue, [broken, good], clock=clock)
    consumer.startService()
    queue.put(nth(0))
    queue.put(nth(1))
    clock.advance(0)
    assert good.stats == [nth(0), nth(1)]
    assert consumer.sink_errors == {"broken": 1}
    [failure] = [e for e in logged if "log_failure" in e]
    assert failure["sink"] == "broken" and failure["count"] == 1
    consumer.stopService()
