"""Per-revision windowed averages, as Knative's autoscaler computes them.

:class:`Aggregator` is a consumer sink (``record(stat)``). For every revision
(``namespace/name``) it keeps Knative's four averagers, with 1-second buckets:
concurrency and requests per second over the stable window and over the panic window.
Each stat adds ``average_concurrent_requests - average_proxied_concurrent_requests`` to
the concurrency buckets and ``request_count - proxied_request_count`` to the RPS ones (the
activator already counted the proxied part), at the stat's time: the sender's
``timestamp`` when it has one, else the server's ``received_at`` (Knative >= v0.19 does
the same). A ``timestamp`` more than ``max_clock_skew`` seconds ahead of or behind
``received_at`` is not trusted: that stat is placed at ``received_at`` and counted (one
stat stamped years ahead would otherwise hold the window there, every later stat too old
for it). The averages are read at the time of a ``clock`` (``seconds()``: the reactor,
or a ``twisted.internet.task.Clock`` in tests), as Knative reads them at ``time.Now()``.

Memory stays bounded: a revision that sent nothing for more than twice the stable window
(by the server's receive times) is dropped when the averages are read (a scrape, the API)
or when the cap is reached, and at most ``max_revisions`` are tracked; stats of further
revisions are counted and refused, with a warning at most once a minute. Recording a stat
costs the same whatever the number of revisions.

The arithmetic is :mod:`statserver.aggregation.windows`'s; nothing here depends on Twisted's
reactor (only its logger).
"""

from typing import NamedTuple

from twisted.logger import Logger

from statserver.aggregation.windows import NS_PER_S, PRECISION, RevisionBuckets
from statserver.sinks.base import Sink
from statserver.speedups import choose, compiled
from statserver.text import quote

_log = Logger()

LINEAR = "linear"
WEIGHTED_EXPONENTIAL = "weighted-exponential"
AGGREGATIONS = (LINEAR, WEIGHTED_EXPONENTIAL)

#: Knative's bucket size.
BUCKET = NS_PER_S
#: Knative's bounds for a stable window (``autoscaling.WindowMin``/``WindowMax``), seconds.
WINDOW_MIN = 6
WINDOW_MAX = 3600
DEFAULT_STABLE_WINDOW = 60
DEFAULT_PANIC_WINDOW_PERCENTAGE = 10.0
DEFAULT_MAX_REVISIONS = 10000
#: How far (seconds) a sender's timestamp may be from the stat's receive time and still
#: place the stat: less than the shortest stable window Knative allows (6 s).
DEFAULT_MAX_CLOCK_SKEW = 5.0
#: The refused-revisions warning is logged at most this often (seconds).
WARNING_INTERVAL = 60.0
#: Pods a revision remembers before it forgets those gone from the stable window.
PODS_LIMIT = 64




def check_stable_window(seconds):
    """``seconds`` as an int if Knative accepts it as a stable window (6 s to 1 h, whole
    seconds), else ``ValueError`` saying why."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"stable window must be a number of seconds, not {seconds!r}") from None
    if not WINDOW_MIN <= value <= WINDOW_MAX:
        raise ValueError(f"stable window = {seconds}s, must be in [{WINDOW_MIN}s, {WINDOW_MAX}s]")
    if value != int(value):
        raise ValueError(f"stable window = {seconds}s, must be a whole number of seconds")
    return int(value)


def check_panic_window_percentage(percentage):
    """``percentage`` as a float if Knative accepts it (1 to 100), else ``ValueError``."""
    try:
        value = float(percentage)
    except (TypeError, ValueError):
        raise ValueError(f"panic window percentage must be a number, not {percentage!r}") from None
    if not 1.0 <= value <= 100.0:
        raise ValueError(f"panic window percentage = {percentage}, must be in [1, 100]")
    return value


def check_aggregation(name):
    """``name`` if it is one of :data:`AGGREGATIONS`, else ``ValueError``."""
    if name not in AGGREGATIONS:
        raise ValueError(f"aggregation = {name!r}, must be one of {', '.join(AGGREGATIONS)}")
    return name


def check_max_revisions(count):
    """``count`` as an int if it is a whole number >= 1, else ``ValueError``."""
    try:
        value = int(str(count).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"max revisions = {count!r}, must be a whole number, at least 1")
    return value


def check_max_clock_skew(seconds):
    """``seconds`` as a float if it is a finite number >= 0, else ``ValueError``."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = -1.0
    if not 0.0 <= value < float("inf"):
        raise ValueError(f"max clock skew = {seconds!r}, must be a number of seconds >= 0")
    return value


def panic_window(stable_window, percentage):
    """The panic window in nanoseconds for a stable window in seconds, as Knative's
    ``MakeMetric`` derives it: ``stable × percentage / 100`` rounded to the second (half
    away from zero), at least one bucket."""
    ns = int(float(stable_window * NS_PER_S) * percentage / 100.0)
    seconds, rest = divmod(ns, NS_PER_S)
    if rest * 2 >= NS_PER_S:
        seconds += 1
    return max(seconds * NS_PER_S, BUCKET)


class RevisionAverages(NamedTuple):
    """One revision's figures as of a time: the four averages, the distinct pods seen in
    the stable window and the time of its latest stat (int ns since the epoch)."""

    namespace: str
    name: str
    stable_concurrency: float
    panic_concurrency: float
    stable_rps: float
    panic_rps: float
    pods: int
    last_stat_time: int


class _Revision:
    __slots__ = ("namespace", "name", "buckets", "pods", "pods_limit", "last_stat_time",
                 "last_received")

    def __init__(self, namespace, name, buckets):
        self.namespace = namespace
        self.name = name
        self.buckets = buckets  # the four averagers
        self.pods = {}  # pod name -> time of its latest stat
        self.pods_limit = PODS_LIMIT  # forget old pods when there are more than this
        self.last_stat_time = 0
        self.last_received = 0


class Aggregator(Sink):
    """The consumer sink keeping every revision's windowed averages (module docstring).

    ``stable_window`` is in whole seconds, ``panic_window_percentage`` in percent of it,
    ``aggregation`` :data:`LINEAR` (``TimedFloat64Buckets``) or
    :data:`WEIGHTED_EXPONENTIAL` (``WeightedFloat64Buckets``).
    """

    name = "aggregate"

    def __init__(self, clock, *, stable_window=DEFAULT_STABLE_WINDOW,
                 panic_window_percentage=DEFAULT_PANIC_WINDOW_PERCENTAGE,
                 aggregation=LINEAR, max_revisions=DEFAULT_MAX_REVISIONS,
                 max_clock_skew=DEFAULT_MAX_CLOCK_SKEW):
        self.clock = clock
        self.stable_window = check_stable_window(stable_window) * NS_PER_S
        self.panic_window_percentage = check_panic_window_percentage(panic_window_percentage)
        self.panic_window = panic_window(self.stable_window // NS_PER_S,
                                         self.panic_window_percentage)
        self.aggregation = check_aggregation(aggregation)
        self.max_revisions = check_max_revisions(max_revisions)
        self.max_clock_skew = check_max_clock_skew(max_clock_skew)
        self._max_skew = int(self.max_clock_skew * NS_PER_S)
        self._revisions = {}  # (namespace, name) -> _Revision
        self._expiry = 2 * self.stable_window
        self._last_full_expiry = None  # received time of the last expiry at the cap
        self.refused_revisions = 0  # stats of revisions past max_revisions
        self.refused_stats = 0  # stats with a non-finite value or no time
        self.skewed_ahead = 0  # stats placed at their receive time: sender's clock ahead
        self.skewed_behind = 0  # likewise, sender's clock behind
        self._last_warning = None

    def __len__(self):
        return len(self._revisions)

    def record(self, stat):
        """Add ``stat`` to its revision's four averagers."""
        self.record_many((stat,))

    def record_many(self, stats):
        """``record`` each of ``stats`` in turn (the consumer hands over lists)."""
        if compiled_record_many is None:
            self.pure_record_many(stats)
        else:
            compiled_record_many(self, stats, self.pure_record_many)

    def pure_record_many(self, stats):
        """``record_many`` in Python (``statserver._speedups`` does the common case of each
        stat in C where it is built, and hands this the others one at a time)."""
        revisions = self._revisions
        max_skew = self._max_skew
        for stat in stats:
            # unpacked at once: a StatMessage is a tuple, and this is the hot loop
            (namespace, name, pod_name, concurrency, proxied_concurrency, count,
             proxied_count, _, at, received, _) = stat
            if at is None:
                at = received
                if at is None:
                    self.refused_stats += 1
                    continue
            elif received is None:
                received = at
            elif at - received > max_skew:  # would hold the window ahead of later stats
                self.skewed_ahead += 1
                at = received
            elif received - at > max_skew:
                self.skewed_behind += 1
                at = received
            concurrency -= proxied_concurrency
            rps = count - proxied_count
            if (concurrency - concurrency) + (rps - rps) != 0.0:  # inf or nan in either
                self.refused_stats += 1
                continue
            revision = revisions.get((namespace, name))
            if revision is None:
                revision = self._add(namespace, name, received)
                if revision is None:
                    continue
            revision.buckets.record(at, concurrency, rps)
            if at > revision.last_stat_time:
                revision.last_stat_time = at
            revision.last_received = received
            pods = revision.pods
            pods[pod_name] = at  # senders send in time order: the latest is the newest
            if len(pods) > revision.pods_limit:
                self._trim_pods(revision, at)

    def _trim_pods(self, revision, at):
        self._forget_pods(revision, at)
        revision.pods_limit = max(PODS_LIMIT, 2 * len(revision.pods))

    def _add(self, namespace, name, received):
        if len(self._revisions) >= self.max_revisions:
            # Make room from the silent ones, scanning at most once a second.
            if self._last_full_expiry is None or received - self._last_full_expiry >= NS_PER_S:
                self._last_full_expiry = received
                self._expire(received)
        if len(self._revisions) >= self.max_revisions:
            self.refused_revisions += 1
            now = received / NS_PER_S
            if self._last_warning is None or now - self._last_warning >= WARNING_INTERVAL:
                self._last_warning = now
                _log.warn(
                    "aggregation: {tracked} revisions tracked (--max-revisions); stats of new "
                    "revisions are refused ({refused} so far, e.g. {namespace}/{name})",
                    tracked=len(self._revisions), refused=self.refused_revisions,
                    namespace=quote(namespace), name=quote(name))
            return None
        buckets = RevisionBuckets(self.stable_window // NS_PER_S,
                                  self.panic_window // NS_PER_S,
                                  weighted=self.aggregation == WEIGHTED_EXPONENTIAL)
        revision = _Revision(namespace, name, buckets)
        self._revisions[(namespace, name)] = revision
        return revision

    def _forget_pods(self, revision, now_ns):
        # Keep the pods whose latest stat is in a bucket the stable window covers at now.
        oldest = now_ns - now_ns % NS_PER_S - self.stable_window + NS_PER_S
        pods = revision.pods
        for pod in [pod for pod, at in pods.items() if at < oldest]:
            del pods[pod]

    def _expire(self, now_ns):
        limit = now_ns - self._expiry
        revisions = self._revisions
        for key in [key for key, r in revisions.items() if r.last_received < limit]:
            del revisions[key]

    def expire(self, now=None):
        """Drop the revisions that sent nothing for more than twice the stable window
        before ``now`` (seconds; the clock's time by default). Reads do it first."""
        self._expire(int((self.clock.seconds() if now is None else now) * NS_PER_S))

    def keys(self):
        """The ``(namespace, name)`` of every revision tracked, in no order (a new list);
        with ``revision()`` a reader can take the averages a few at a time."""
        return list(self._revisions)

    def _averages(self, revision, now_ns):
        self._forget_pods(revision, now_ns)
        buckets = revision.buckets
        averages = None if compiled_averages is None else compiled_averages(
            buckets, now_ns, _SCALE)
        if averages is None:
            averages = buckets.averages(now_ns)
        return RevisionAverages(revision.namespace, revision.name, *averages,
                                len(revision.pods), revision.last_stat_time)

    def revisions(self):
        """:class:`RevisionAverages` of every revision tracked, as of the clock's time,
        sorted by namespace and name."""
        now_ns = int(self.clock.seconds() * NS_PER_S)
        self._expire(now_ns)
        return [self._averages(self._revisions[key], now_ns)
                for key in sorted(self._revisions)]

    def revisions_in_slices(self, size=200):
        """:meth:`revisions` ``size`` at a time, as a generator of lists, for a render
        spread over reactor turns: all as of the clock's time when it started; a
        revision dropped meanwhile is left out, one added meanwhile waits for the next."""
        now_ns = int(self.clock.seconds() * NS_PER_S)
        self._expire(now_ns)
        keys = sorted(self._revisions)
        for i in range(0, len(keys), size):
            revisions = self._revisions
            found = (revisions.get(key) for key in keys[i:i + size])
            yield [self._averages(r, now_ns) for r in found if r is not None]

    def revision(self, namespace, name):
        """:class:`RevisionAverages` of one revision as of the clock's time, or None."""
        now_ns = int(self.clock.seconds() * NS_PER_S)
        key = (namespace, name)
        revision = self._revisions.get(key)
        if revision is None:
            return None
        if revision.last_received < now_ns - self._expiry:
            del self._revisions[key]
            return None
        return self._averages(revision, now_ns)


def compiled_aggregate_record_many():
    """``statserver._speedups.aggregate_record_many``, or None where it is not built."""
    configure = compiled("configure_aggregate")
    if configure is None:
        return None
    if not _configured:
        configure(RevisionBuckets, _Revision)
        _configured.append(True)
    return compiled("aggregate_record_many")


_configured = []  # configure_aggregate has been called (once is enough)

# Aggregator.record_many's common case in C unless STATSERVER_PURE=1 (or not built).
compiled_record_many = choose(compiled_aggregate_record_many, None)


def compiled_linear_averages():
    """``statserver._speedups.linear_averages`` (``RevisionBuckets.averages`` of the
    linear aggregation, None where the pure method must answer), or None where it is not
    built."""
    if compiled_aggregate_record_many() is None:  # (which configures it)
        return None
    return compiled("linear_averages")


# What a read of the averages costs, mostly (a dashboard snapshot or a scrape of 10,000
# revisions): in C unless STATSERVER_PURE=1 (or not built).
compiled_averages = choose(compiled_linear_averages, None)
_SCALE = 10.0**PRECISION  # round_to_n_digits' own
