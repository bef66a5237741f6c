"""The dashboard's server side: one snapshot a second, shared by every viewer.

``Dashboard`` is a Twisted service. Every ``interval`` seconds (1) it reads the
aggregator's revisions once, samples them into the ``History`` when a sample is due, and,
if anyone watches, encodes one snapshot (JSON, built once) and writes the same bytes to
every viewer's Server-Sent Events stream. A viewer whose connection does not keep up
(its transport asked us to pause) skips snapshots until it drains: nothing per viewer
grows with the number of revisions beyond writing the shared bytes.

Reading 10,000 revisions' averages takes about 0.1 s, so a snapshot is built by a
``Cooperator`` in steps of ``STEP`` revisions, a few milliseconds each, with the reactor
free between them; a tick that finds the previous build still running is skipped. While
nobody watches, a tick only samples the history: no rows are sorted or encoded.
"""

import json
import math
import time

from twisted.application.service import Service
from twisted.internet.task import Cooperator, LoopingCall, SchedulerStopped, TaskStopped
from twisted.logger import Logger

from statserver.constants import FORMATS, NS_PER_S
from statserver.dashboard.history import History

#: Knative's default panic threshold: panic-window concurrency at 200 % of the stable one.
PANIC_THRESHOLD = 2.0
DEFAULT_MAX_VIEWERS = 64
#: Revisions whose averages one build step reads (about 4 ms on the benchmark's machine).
STEP = 500
REVISION_COLUMNS = ("namespace", "name", "stable_concurrency", "panic_concurrency",
                    "stable_rps", "panic_rps", "pods", "last_stat_age")


def _number(value):
    return value if math.isfinite(value) else None


def _encode(value):
    return json.dumps(value, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False).encode("utf-8", "backslashreplace")  # a lone surrogate: \udcff


def _rows(averages, now_ns):
    """``RevisionAverages`` as snapshot rows (``REVISION_COLUMNS``)."""
    return [[r.namespace, r.name, _number(r.stable_concurrency), _number(r.panic_concurrency),
             _number(r.stable_rps), _number(r.panic_rps), r.pods,
             round((now_ns - r.last_stat_time) / NS_PER_S, 1)] for r in averages]


class Viewer:
    """One open event stream (a ``twisted.web`` request): a push producer, so that the
    transport can tell us to stop writing while its buffer is full."""

    def __init__(self, request):
        self.request = request
        self.paused = False
        self.skipped = 0

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False

    def stopProducing(self):
        self.paused = True

    def send(self, event):
        if self.paused:
            self.skipped += 1
            return
        self.request.write(event)


class Dashboard(Service):
    """Snapshots of ``aggregator``'s revisions and ``server``'s connections and figures,
    kept in ``history`` and pushed to viewers every ``interval`` seconds."""

    _log = Logger()

    def __init__(self, server, aggregator, *, reactor, history=None, interval=1.0,
                 max_viewers=DEFAULT_MAX_VIEWERS):
        self.server = server
        self.aggregator = aggregator
        self.reactor = reactor
        self.history = history if history is not None else History()
        self.interval = interval
        self.max_viewers = max_viewers
        self.viewers = set()
        self.snapshot_cost = 0.0  # seconds the last snapshot took to build, all steps
        self.longest_step = 0.0  # seconds of the longest of its steps
        self._loop = LoopingCall(self.tick)
        self._loop.clock = reactor
        self._cooperator = Cooperator(scheduler=lambda step: reactor.callLater(0, step))
        self._building = None  # the build under way (a CooperativeTask)
        self._building_rows = False  # whether that build encodes a snapshot for viewers
        self._rows_wanted = False  # a viewer came while a build without rows ran
        self._event = None  # (time, bytes) of the latest snapshot event
        self._previous = None  # (time, counts) for the per-second rates

    # ---- lifecycle ----

    def startService(self):
        super().startService()
        self._loop.start(self.interval, now=False)

    def stopService(self):
        """Stop the loop and end every event stream (the page reconnects by itself)."""
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        self._cooperator.stop()
        for viewer in list(self.viewers):
            request = self._drop(viewer)
            try:
                request.finish()
            except Exception:  # the connection is already gone
                pass

    # ---- viewers ----

    def add_viewer(self, request):
        """Start an event stream on ``request``; False when ``max_viewers`` are open.
        The viewer gets the latest snapshot at once if it is at most a history sample
        old (one was built for a viewer meanwhile), and a fresh one as soon as it is
        built."""
        if len(self.viewers) >= self.max_viewers:
            return False
        viewer = Viewer(request)
        self.viewers.add(viewer)
        request.registerProducer(viewer, True)
        request.notifyFinish().addBoth(lambda _: self._drop(viewer))
        request.write(b"retry: 1000\n\n")
        now = self.reactor.seconds()
        age = None if self._event is None else now - self._event[0]
        if age is not None and age < self.history.resolution + self.interval:
            # at most one history sample old: a first paint now, the fresh snapshot
            # follows within the build's time
            self._send(viewer, self._event[1])
        if age is None or age >= self.interval:
            self._start_build(now, False)
        return True

    def _drop(self, viewer):
        """Forget ``viewer``; its request (None if it was dropped already)."""
        if viewer not in self.viewers:
            return None
        self.viewers.discard(viewer)
        request, viewer.request = viewer.request, None
        try:
            request.unregisterProducer()
        except Exception:
            pass
        # (viewer.request is None: a request whose connection is gone keeps its producer;
        # untied, the two go by reference counting alone, statserver/gcpolicy.py)
        return request

    # ---- snapshots ----

    def tick(self):
        """Sample the history when due and push a snapshot to the viewers (each second)."""
        now = self.reactor.seconds()
        sample = self.history.due(now)
        if sample or self.viewers:
            self._start_build(now, sample)

    def _start_build(self, now, sample):
        if not self.running:
            return
        if self._building is not None:
            # a viewer came during a build for the history alone: its snapshot next
            self._rows_wanted = self._rows_wanted or (bool(self.viewers)
                                                      and not self._building_rows)
            return
        rows = self._building_rows = bool(self.viewers)
        task = self._building = self._cooperator.cooperate(
            self._timed(self._steps(now, sample, rows)))
        task.whenDone().addErrback(self._build_failed).addBoth(self._built)

    def _built(self, _):
        self._building = None
        if self._rows_wanted:
            self._rows_wanted = False
            if self.viewers:
                self._start_build(self.reactor.seconds(), False)

    def _build_failed(self, failure):
        if not failure.check(SchedulerStopped, TaskStopped):  # stopped with the service: not an error
            self._log.failure("dashboard snapshot failed", failure)

    def build_now(self, now, sample=False):
        """Build a snapshot in one go (benchmarks); return its event bytes."""
        for _ in self._timed(self._steps(now, sample)):
            pass
        return self._event[1]

    def _timed(self, steps):
        total = longest = 0.0
        while True:
            started = time.perf_counter()
            try:
                next(steps)
            except StopIteration:
                break
            finally:
                took = time.perf_counter() - started
                total += took
                longest = max(longest, took)
            yield
        self.snapshot_cost, self.longest_step = total, longest

    def _steps(self, now, sample, rows=True):
        """Build one snapshot (yielding between steps) and send it to every viewer: each
        step reads ``STEP`` revisions' averages, samples them into the history when due
        and (with ``rows``) encodes their rows; the last joins the parts. Without
        ``rows`` only the history is sampled."""
        aggregator = self.aggregator
        aggregator.expire(now)
        now_ns = int(now * NS_PER_S)
        figures = self.server_figures(now)
        sampler = self.history.begin_sample() if sample else None
        keys = aggregator.keys()
        if rows:
            keys.sort()
        parts = []
        for first in range(0, len(keys), STEP):
            averages = [a for a in (aggregator.revision(namespace, name)
                                    for namespace, name in keys[first:first + STEP])
                        if a is not None]
            if sampler is not None:
                sampler.add(averages)
            if rows and averages:
                parts.append(_encode(_rows(averages, now_ns))[1:-1])
            yield
        if sampler is not None:
            sampler.finish(now, figures)
        if not rows:
            return
        head = _encode(self.snapshot_head(now, figures))
        event = b"".join((b"event: snapshot\ndata: ", head[:-1], b',"revisions":[',
                          b",".join(parts), b"]}\n\n"))
        self._event = (now, event)
        for viewer in list(self.viewers):
            self._send(viewer, event)

    def _send(self, viewer, event):
        try:
            viewer.send(event)
        except Exception:  # its connection went away under us: it is done
            self._log.failure("dashboard viewer dropped")
            request = self._drop(viewer)
            try:  # and if the connection is still there, an unwritable stream ends it
                request.loseConnection()
            except Exception:
                pass

    def server_figures(self, now):
        """The server's figures now: stats/s by format, decode errors/s and rejected
        stats/s since the previous call, connections, queue depth, paused, viewers."""
        metrics = self.server.metrics
        received = dict(metrics.stats_received.counts)
        errors = self.server.decode_errors_total()
        rejected = self.aggregator.refused_revisions + self.aggregator.refused_stats
        counts = (received, errors, rejected)
        previous, self._previous = self._previous, (now, counts)
        figures = {
            "connections": len(self.server.connection_infos()),
            "queue_depth": len(self.server.stats.pending),
            "paused": 1 if self.server.paused else 0,
            "viewers": len(self.viewers),
        }
        elapsed = now - previous[0] if previous is not None else 0
        for fmt in FORMATS:
            figures[f"stats_per_second_{fmt}"] = (
                round((received[fmt] - previous[1][0][fmt]) / elapsed, 3) if elapsed > 0 else 0)
        figures["decode_errors_per_second"] = (
            round((errors - previous[1][1]) / elapsed, 3) if elapsed > 0 else 0)
        figures["rejected_stats_per_second"] = (
            round((rejected - previous[1][2]) / elapsed, 3) if elapsed > 0 else 0)
        figures["totals"] = {
            "stats_received": received,
            "decode_errors": errors,
            "rejected_stats": {"max_revisions": self.aggregator.refused_revisions,
                               "not_finite_or_no_time": self.aggregator.refused_stats},
            "backpressure_pauses": self.server.backpressure_pauses,
            "frames_held": self.server.frames_held,
            "queue_size": self.server.queue_size,
        }
        return figures

    def snapshot_head(self, now, figures):
        """The snapshot but its ``revisions``, as a JSON-ready dict (``docs/dashboard.md``
        describes the whole)."""
        now_ns = int(now * NS_PER_S)
        history = self.history
        return {
            "time": now,
            "config": {
                "stable_window_seconds": self.aggregator.stable_window // NS_PER_S,
                "panic_window_seconds": self.aggregator.panic_window // NS_PER_S,
                "aggregation": self.aggregator.aggregation,
                "max_revisions": self.aggregator.max_revisions,
                "panic_threshold": PANIC_THRESHOLD,
                "history_length_seconds": history.length,
                "history_resolution_seconds": history.resolution,
            },
            "revision_columns": REVISION_COLUMNS,
            "connections": [info.to_json(now_ns) for info in self._infos()],
            "server": figures,
            "server_history": {"times": list(history.times),
                               **{k: list(v) for k, v in history.server.items()}},
        }

    def _infos(self):
        return sorted(self.server.connection_infos(),
                      key=lambda info: (info.connected_at, info.peer))
