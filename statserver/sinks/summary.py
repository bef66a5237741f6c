"""A sink that logs one summary line a minute: stats, pods, revisions, decode errors."""

from operator import attrgetter, itemgetter

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from statserver.sinks.base import Sink
from statserver.speedups import choose, compiled

_log = Logger()
_pod_name = attrgetter("pod_name")
_revision = itemgetter(0, 1)  # (namespace, name) of a StatMessage

DECODE_ERRORS_SAMPLE = "statserver_decode_errors_total"


def pure_add_stats(stats, pods, revisions):
    """Add the pod names (but "") and the ``(namespace, name)`` pairs of ``stats`` to the
    sets ``pods`` and ``revisions``."""
    pods.update(map(_pod_name, stats))
    pods.discard("")
    revisions.update(map(_revision, stats))


def compiled_add_stats():
    """``statserver._speedups.summary_add`` (the same for lists or tuples of
    ``StatMessage``s), or None where the extension is not built."""
    return compiled("summary_add")


#: ``pure_add_stats``, compiled unless ``STATSERVER_PURE=1`` (or not built).
add_stats = choose(compiled_add_stats, pure_add_stats)


def decode_errors_total(registry):
    """The sum of ``statserver_decode_errors_total`` over its labels in ``registry``."""
    if registry is None:
        return 0
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == DECODE_ERRORS_SAMPLE:
                total += sample.value
    return int(total)


class Summary(Sink):
    """Counts the stats it is given, the distinct pods and revisions (``namespace/name``)
    they came from, and logs them every ``interval`` seconds at info level with the decode
    errors counted in ``registry`` over the same time, e.g.::

        last 60s: 1200 stats from 20 pods for 60 revisions, 0 decode errors

    ``report()`` logs the line and starts a new interval (``close()`` logs the last one).
    ``decode_errors`` (a function returning the count so far), when given, is used
    instead of walking ``registry``: the timer then costs the same at any size.
    """

    name = "summary"

    def __init__(self, registry=None, *, reactor=None, interval=60.0, decode_errors=None):
        if reactor is None:
            from twisted.internet import reactor
        self._registry = registry
        if decode_errors is None:
            decode_errors = lambda: decode_errors_total(registry)  # noqa: E731
        self._decode_errors = decode_errors
        self._reactor = reactor
        self._interval = interval
        self._timer = None
        self._reset()
        self._decode_errors_before = self._decode_errors()

    def _reset(self):
        self.stats = 0
        self.pods = set()
        self.revisions = set()
        self._started = self._reactor.seconds()

    def start(self):
        self._reset()
        self._timer = LoopingCall(self._report_every_interval)
        self._timer.clock = self._reactor
        self._timer.start(self._interval, now=False)

    def record(self, stat):
        self.record_many((stat,))

    def record_many(self, stats):
        self.stats += len(stats)
        add_stats(stats, self.pods, self.revisions)

    def report(self):
        """Log the summary of the interval so far and start a new one; returns the fields."""
        total = self._decode_errors()
        fields = {
            "seconds": round(self._reactor.seconds() - self._started),
            "stats": self.stats,
            "pods": len(self.pods),
            "revisions": len(self.revisions),
            "decode_errors": total - self._decode_errors_before,
        }
        self._decode_errors_before = total
        _log.info(
            "last {seconds}s: {stats} stats from {pods} pods for {revisions} revisions, "
            "{decode_errors} decode errors",
            **fields,
        )
        self._reset()
        return fields

    def _report_every_interval(self):
        try:
            self.report()
        except Exception:  # a broken collector must not stop the next minute's line
            _log.failure("cannot log the summary")
            self._reset()

    def close(self):
        if self._timer is not None and self._timer.running:
            self._timer.stop()
            self.report()
        self._timer = None
