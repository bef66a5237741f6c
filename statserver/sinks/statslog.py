"""The ``--stats-log`` sink: every stat as one line of JSON, in a file or on stdout.

The file is written by a thread of its own, never by the reactor: a slow reader (a FIFO,
a slow disk, NFS) makes the writes slow, not the server. When the writer falls behind,
the sink says so to the consumer (``ready()``), which stops taking stats; the queue then
fills and the server stops reading its connections (the usual backpressure), so nothing
accepted is dropped and memory stays bounded. See "Limits and hostile input" in
``docs/server.md``.
"""

import os
import queue
import sys
import threading

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from statserver.sinks.base import Sink

_log = Logger()

#: Lines handed to the writer thread and not yet written, past which the sink asks the
#: consumer to wait (about 25 MB of JSON lines).
MAX_PENDING = 100_000
#: Seconds ``close()`` waits for the writer to finish at shutdown; what it has not
#: written by then is counted lost.
CLOSE_TIMEOUT = 5.0

_REOPEN = object()
_CLOSE = object()


class StatsLog(Sink):
    """Writes ``stat.to_json()`` and a newline per stat to ``path`` (``"-"``: stdout).

    Lines are gathered here and handed to the writer thread every ``flush_interval``
    seconds, when ``max_buffered`` lines are waiting, and on ``close()``. A write that
    fails is logged (at most once a minute) and its lines are counted in ``lines_lost``:
    a full disk must not stop the server, nor grow its memory. ``registry`` (optional)
    gets ``statserver_stats_log_lines_{written,lost}_total`` and ``..._pending``.
    """

    name = "stats-log"

    def __init__(self, path, *, reactor=None, flush_interval=1.0, max_buffered=10000,
                 max_pending=MAX_PENDING, close_timeout=CLOSE_TIMEOUT, registry=None):
        if reactor is None:
            from twisted.internet import reactor
        self.path = path
        self.lines_written = 0
        self.lines_lost = 0
        self.lines_pending = 0  # handed to the writer, not yet written
        self._reactor = reactor
        self._flush_interval = flush_interval
        self._max_buffered = max_buffered
        self._max_pending = max_pending
        self._close_timeout = close_timeout
        self._lines = []
        self._flusher = None
        self._last_error_logged = None
        self._room = []  # Deferreds of ready() waiting for the writer to catch up
        self._work = queue.SimpleQueue()
        self._thread = None
        self._closed = None  # fires when the writer thread has finished
        if registry is not None:
            registry.register(_StatsLogCollector(self))

    # ---- reactor side ----

    def start(self):
        """Start the writer thread and the periodic flush."""
        self._start_thread()
        self._flusher = LoopingCall(self.flush)
        self._flusher.clock = self._reactor
        self._flusher.start(self._flush_interval, now=False)

    def _start_thread(self):
        if self._thread is None:
            self._closed = Deferred()
            # a daemon: a writer stuck on a reader that never reads must not keep the
            # process from exiting (the reactor's thread pool would wait for it)
            self._thread = threading.Thread(target=self._run, name="stats-log", daemon=True)
            self._thread.start()

    def record(self, stat):
        self._lines.append(stat.to_json())
        if len(self._lines) >= self._max_buffered:
            self.flush()

    def record_many(self, stats):
        self._lines.extend(stat.to_json() for stat in stats)
        if len(self._lines) >= self._max_buffered:
            self.flush()

    def ready(self):
        """None while the writer keeps up; else a Deferred that fires once it has caught
        up to half of ``max_pending`` (the consumer waits on it before taking more)."""
        if self.lines_pending + len(self._lines) < self._max_pending:
            return None
        d = Deferred()
        self._room.append(d)
        return d

    def flush(self):
        """Hand the gathered lines to the writer thread now (it never blocks)."""
        if not self._lines:
            return
        self._start_thread()
        lines, self._lines = self._lines, []
        self.lines_pending += len(lines)
        self._work.put((("\n".join(lines) + "\n").encode("utf-8"), len(lines)))

    def reopen(self):
        """Flush, then have the writer close and reopen the file (after log rotation);
        stdout stays."""
        self.flush()
        self._work.put(_REOPEN)

    def close(self):
        """Stop the periodic flush, hand over what is gathered and let the writer finish:
        a Deferred that fires once it has, or after ``close_timeout`` seconds, counting
        what it could not write as lost."""
        if self._flusher is not None and self._flusher.running:
            self._flusher.stop()
        self._flusher = None
        self.flush()
        if self._thread is None:
            return succeed(None)
        self._work.put(_CLOSE)
        done = self._closed
        timer = self._reactor.callLater(self._close_timeout, self._close_timed_out)
        done.addBoth(lambda result: timer.cancel() if timer.active() else None)
        return done

    def _close_timed_out(self):
        if self._closed.called:
            return
        lost = self.lines_pending
        self.lines_lost += lost
        self.lines_pending = 0
        _log.error(
            "stats log {path}: the writer did not finish within {timeout}s of shutdown;"
            " {lost} lines not written",
            path=self.path, timeout=self._close_timeout, lost=lost,
        )
        self._closed.callback(None)

    def _written(self, count):
        self.lines_written += count
        self._done(count)

    def _failed(self, count, error):
        self.lines_lost += count
        self._done(count)
        now = self._reactor.seconds()
        if self._last_error_logged is None or now - self._last_error_logged >= 60:
            self._last_error_logged = now
            _log.error(
                "cannot write the stats log {path}: {error} ({lost} lines lost so far)",
                path=self.path,
                error=error,
                lost=self.lines_lost,
            )

    def _done(self, count):
        if self._closed is not None and self._closed.called:
            return  # counted lost by the close timeout already
        self.lines_pending -= count
        if self._room and self.lines_pending + len(self._lines) <= self._max_pending // 2:
            waiting, self._room = self._room, []
            for d in waiting:
                if not d.called:
                    d.callback(None)

    def _finished(self):
        if not self._closed.called:
            self._closed.callback(None)

    # ---- writer thread ----

    def _run(self):
        call = self._reactor.callFromThread
        fd = None
        try:
            fd = self._open()
        except OSError as e:  # the first write tries again (and counts its lines lost)
            call(_log.error, "cannot open the stats log {path}: {error}", path=self.path,
                 error=e)
        while True:
            item = self._work.get()
            if item is _CLOSE:
                if fd is not None and self.path != "-":
                    _close_quietly(fd)
                call(self._finished)
                return
            if item is _REOPEN:
                if fd is not None and self.path != "-":
                    _close_quietly(fd)
                    fd = None
                continue
            data, count = item
            try:
                if fd is None:
                    fd = self._open()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except OSError as e:
                call(self._failed, count, e)
                continue
            call(self._written, count)

    def _open(self):
        if self.path == "-":
            # The process's own stdout: twist points sys.stdout at the log.
            stdout = sys.__stdout__ or sys.stdout
            stdout.flush()
            return stdout.fileno()
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _close_quietly(fd):
    try:
        os.close(fd)
    except OSError:
        pass


class _StatsLogCollector:
    """The stats log's counts on /metrics."""

    def __init__(self, log):
        self._log = log

    def _families(self):
        return (
            CounterMetricFamily("statserver_stats_log_lines_written",
                                "Stats written to the --stats-log file"),
            CounterMetricFamily("statserver_stats_log_lines_lost",
                                "Stats the --stats-log writer could not write (write errors,"
                                " or still unwritten when the shutdown flush timed out)"),
            GaugeMetricFamily("statserver_stats_log_lines_pending",
                              "Stats handed to the --stats-log writer thread, not yet written"),
        )

    def describe(self):
        return self._families()

    def collect(self):
        written, lost, pending = self._families()
        written.add_metric([], self._log.lines_written)
        lost.add_metric([], self._log.lines_lost)
        pending.add_metric([], self._log.lines_pending)
        return (written, lost, pending)
