"""The command's one consumer of ``StatsServer.stats``: every stat to every sink.

A sink provides ``statserver.interfaces.ISink`` (most simply: subclass
``statserver.sinks.base.Sink`` and write ``record``). The consumer calls ``start()`` when
it starts, ``record_many(stats)`` with lists of stats in queue order, ``close()`` once
after the last of them (it may return a Deferred). A sink that can fall behind (a writer
thread) answers ``ready()`` with a Deferred until it can take more: the consumer then
takes nothing, so the queue fills and the server's backpressure pauses the senders.
"""

import time

from prometheus_client import Counter
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, DeferredList, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from statserver.interfaces import ISink
from statserver.sinks.base import RecordFailed

_log = Logger()

# A failing sink is logged at most this often (seconds); every failure is counted.
ERROR_LOG_INTERVAL = 60.0


# Stats taken from the queue at a time (~3-10 µs each through the command's sinks) ...
MAX_BATCH = 1000
# ... and slices taken in one reactor turn until this many seconds of work are done: a
# full queue (10,000) no longer holds the reactor ~100 ms, and the consumer still keeps
# up with what one turn's reads bring (several thousand stats under a protobuf load).
TURN_BUDGET = 0.02


def take_all(queue, limit=None):
    """Every stat ``queue`` holds now (at most ``limit``), oldest first: in one call where
    the queue has ``take_all`` (``statserver.server.service.StatsQueue``), else by ``get()``
    after ``get()``."""
    batch_take = getattr(queue, "take_all", None)
    if batch_take is not None:
        return batch_take() if limit is None else batch_take(limit)
    taken = []
    while queue.pending and (limit is None or len(taken) < limit):
        queue.get().addCallback(taken.append)
    return taken


class StatsConsumer(Service):
    """Takes stats from ``queue`` (a ``DeferredQueue``) for as long as it runs and passes
    each to every sink's ``record``. A sink that raises is logged and counted
    (``statserver_sink_errors_total{sink}`` in ``registry`` when given, and
    ``self.sink_errors``); the others still get the stat and the loop goes on.

    Stopping takes what is still queued, hands it to the sinks, then closes them.
    """

    def __init__(self, queue, sinks, *, registry=None, clock=None, turn_budget=TURN_BUDGET):
        if clock is None:
            from twisted.internet import reactor as clock
        self.queue = queue
        self._turn_budget = turn_budget
        self.sinks = list(sinks)
        for sink in self.sinks:
            if not ISink.providedBy(sink):
                raise TypeError(f"{sink!r} does not provide ISink (subclass statserver.sinks.base.Sink)")
        self.recorded = 0
        self.sink_errors = {}
        self._clock = clock
        self._last_logged = {}
        self._waiting = None  # the Deferred of the get() the consumer waits on
        self._wakeup = None  # the call that takes the next batch
        self._counter = None
        if registry is not None:
            self._counter = Counter(
                "statserver_sink_errors",
                "Stats that a consumer sink failed to take, by sink.",
                ["sink"],
                registry=registry,
            )

    def startService(self):
        super().startService()
        for sink in self.sinks:
            sink.start()
        self._take()

    def stopService(self):
        super().stopService()
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting.cancel()
        if self._wakeup is not None and self._wakeup.active():
            self._wakeup.cancel()
        self._take()  # what is left: not running, so it returns once the queue is empty
        closing = []
        for sink in self.sinks:
            d = maybeDeferred(sink.close)
            d.addErrback(
                lambda f, sink=sink: _log.failure("while closing sink {sink}", f, sink=sink.name)
            )
            closing.append(d)
        return DeferredList(closing).addCallback(lambda _: None)

    def _take(self):
        """Record everything the queue holds now, then (while running) wait for more."""
        self._wakeup = None
        started = time.perf_counter()  # the work's own duration, whatever the clock
        while True:
            if self.running:
                busy = self._busy_sink()
                if busy is not None:
                    busy.addCallback(lambda _: self._take())
                    busy.addErrback(lambda f: f.trap(CancelledError))
                    self._waiting = busy
                    return
            batch = take_all(self.queue, MAX_BATCH if self.running else None)
            if not batch:
                break
            self._record(batch)
            if (self.running and self.queue.pending
                    and time.perf_counter() - started >= self._turn_budget):
                # this turn's share done: the rest in the next reactor turn
                self._wakeup = self._clock.callLater(0, self._take)
                return
        if self.running:
            d = self.queue.get()
            d.addCallback(self._taken)
            d.addErrback(lambda f: f.trap(CancelledError))
            self._waiting = d

    def _busy_sink(self):
        """The Deferred of the first sink that cannot take more now, or None."""
        for sink in self.sinks:
            d = sink.ready()
            if d is not None:
                return d
        return None

    def _taken(self, stat):
        self._waiting = None
        self._record([stat])
        if self.running:
            # What else arrives in this reactor turn is taken in one go, in the next.
            self._wakeup = self._clock.callLater(0, self._take)

    def _record(self, stats):
        self.recorded += len(stats)
        for sink in self.sinks:
            try:
                sink.record_many(stats)
            except RecordFailed as e:
                self._sink_failed(sink, e.count, e.failure)
            except Exception:
                self._sink_failed(sink, len(stats), Failure())

    def _sink_failed(self, sink, stats, failure):
        name = sink.name
        count = self.sink_errors.get(name, 0) + stats
        self.sink_errors[name] = count
        if self._counter is not None:
            self._counter.labels(sink=name).inc(stats)
        now = self._clock.seconds()
        last = self._last_logged.get(name)
        if last is None or now - last >= ERROR_LOG_INTERVAL:
            self._last_logged[name] = now
            _log.failure(
                "sink {sink} failed to record a stat ({count} failures so far)",
                failure,
                sink=name,
                count=count,
            )
