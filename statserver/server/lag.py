"""How long the reactor was kept from its work: a timer every ``interval`` seconds that
measures how late it fires.

On a shared machine a late timer may only mean that the process waited for a CPU. On
Linux the reactor thread's scheduler statistics (``/proc/thread-self/schedstat``: time
run, time waiting on a run queue) tell the two apart: the *stall* is the lateness less
the time spent waiting for a CPU, i.e. what the server itself did (or blocked on) instead
of running its timers. Elsewhere the stall is the whole lateness.
"""

from prometheus_client import Gauge, Histogram
from twisted.internet.task import LoopingCall

INTERVAL = 0.025
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SCHEDSTAT = "/proc/thread-self/schedstat"


def _run_queue_wait():
    """Seconds the calling thread has waited for a CPU so far (None where unknown)."""
    try:
        with open(_SCHEDSTAT, "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class ReactorLag:
    """``statserver_reactor_lag_seconds`` (how late each tick fired) and
    ``statserver_reactor_stall_seconds`` (the same less the time waiting for a CPU), as
    histograms, and the largest stall so far (``statserver_reactor_stall_max_seconds``)."""

    def __init__(self, clock, registry, *, interval=INTERVAL):
        self._clock = clock
        self._interval = interval
        self._lag = Histogram("statserver_reactor_lag_seconds",
                              "How late the reactor ran a timer due every "
                              f"{interval}s (machine noise included)",
                              buckets=_BUCKETS, registry=registry)
        self._stall = Histogram("statserver_reactor_stall_seconds",
                                "How late the reactor ran a timer, less the time its thread "
                                "waited for a CPU: what the server itself held it for",
                                buckets=_BUCKETS, registry=registry)
        self._max = Gauge("statserver_reactor_stall_max_seconds",
                          "The largest reactor stall since the server started",
                          registry=registry)
        self.max_stall = 0.0
        self._call = LoopingCall(self._tick)
        self._call.clock = clock
        self._last = None
        self._last_wait = None

    def start(self):
        self._last, self._last_wait = self._clock.seconds(), _run_queue_wait()
        self._call.start(self._interval, now=False)

    def stop(self):
        if self._call.running:
            self._call.stop()

    def _tick(self):
        now, wait = self._clock.seconds(), _run_queue_wait()
        lag = max(0.0, now - self._last - self._interval)
        waited = wait - self._last_wait if wait is not None and self._last_wait is not None else 0
        stall = max(0.0, lag - waited)
        self._last, self._last_wait = now, wait
        self._lag.observe(lag)
        self._stall.observe(stall)
        if stall > self.max_stall:
            self.max_stall = stall
            self._max.set(stall)
