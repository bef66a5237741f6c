"""How long the reactor was kept from its work: a timer every ``interval`` seconds that
measures how late it fires.

On a shared machine a late timer may only mean that the process waited for a CPU. On
Linux the reactor thread's scheduler statistics (``/proc/thread-self/schedstat``: time
run, time waiting on a run queue) tell the two apart: the *stall* is the lateness less
the time spent waiting for a CPU, i.e. what the server itself did (or blocked on) instead
of running its timers. Elsewhere the stall is the whole lateness.
"""

import os

from prometheus_client import Gauge, Histogram
from twisted.internet.task import LoopingCall

INTERVAL = 0.025
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SCHEDSTAT = "/proc/thread-self/schedstat"


def _open_schedstat():
    """A descriptor of the calling thread's scheduler statistics, or None where there
    are none. (Read with ``pread``: each read at offset 0 gives the figures of now; one
    open file spares the timer an open and a close every tick.)"""
    try:
        return os.open(_SCHEDSTAT, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _run_queue_wait(fd):
    """Seconds the thread of ``fd`` (``_open_schedstat``) has waited for a CPU so far
    (None where unknown)."""
    if fd is None:
        return None
    try:
        return int(os.pread(fd, 128, 0).split()[1]) / 1e9
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
        self._schedstat = None  # the reactor thread's, while running

    def start(self):
        """Start the timer (on the reactor's thread: its CPU waits are read)."""
        if self._schedstat is None:
            self._schedstat = _open_schedstat()
        self._last, self._last_wait = self._clock.seconds(), _run_queue_wait(self._schedstat)
        self._call.start(self._interval, now=False)

    def stop(self):
        if self._call.running:
            self._call.stop()
        if self._schedstat is not None:
            os.close(self._schedstat)
            self._schedstat = None

    def _tick(self):
        now, wait = self._clock.seconds(), _run_queue_wait(self._schedstat)
        lag = max(0.0, now - self._last - self._interval)
        waited = wait - self._last_wait if wait is not None and self._last_wait is not None else 0
        stall = max(0.0, lag - waited)
        self._last, self._last_wait = now, wait
        self._lag.observe(lag)
        self._stall.observe(stall)
        if stall > self.max_stall:
            self.max_stall = stall
            self._max.set(stall)
