"""The dashboard's history: every revision's four averages and the server's figures,
sampled every ``resolution`` seconds over the last ``length`` seconds.

Memory is bounded: a revision's samples are one ``array('f')`` of ``4 × length /
resolution`` float32 values (a ring shared by all revisions, NaN before its first sample),
so at the defaults (300 s every 5 s: 60 samples) 960 bytes of samples plus 170-230 of
Python overhead (array header, dict slot, key tuple): at most ``bytes_per_revision()`` =
1,200, checked with ``tracemalloc`` by ``tests/test_history.py``. The aggregator tracks at
most ``--max-revisions`` revisions and a revision it dropped is dropped here at the next
sample, so the total is at most ``max_revisions × bytes_per_revision()``: 12 MB at the
default 10,000 (11.3 MB measured). The server's figures are a few deques of
the same length. ``length=0`` keeps nothing.
"""

import math
from array import array
from collections import deque

DEFAULT_LENGTH = 300  # seconds
DEFAULT_RESOLUTION = 5  # seconds
#: Python's overhead per revision beyond its float32 samples (array header, dict slot and
#: key tuple): 170-230 bytes measured with ``tracemalloc``, rounded up.
OVERHEAD_PER_REVISION = 240
#: The figures of the server kept over time (see ``Dashboard.server_figures``).
SERVER_SERIES = ("stats_per_second_gob", "stats_per_second_json", "stats_per_second_protobuf",
                 "connections", "decode_errors_per_second", "rejected_stats_per_second",
                 "queue_depth", "paused", "viewers")
_NAN = float("nan")


def check_history(length, resolution):
    """``(length, resolution)`` as ints when valid (whole seconds; length 0 disables,
    else a multiple of resolution, at most 86,400), else ``ValueError`` saying why."""
    try:
        length, resolution = int(str(length).strip()), int(str(resolution).strip())
    except ValueError:
        raise ValueError(f"history length and resolution must be whole seconds, not "
                         f"{length!r} and {resolution!r}") from None
    if resolution < 1:
        raise ValueError(f"history resolution = {resolution}s, must be at least 1s")
    if length < 0 or length > 86400:
        raise ValueError(f"history length = {length}s, must be 0 (off) to 86400s")
    if length % resolution:
        raise ValueError(f"history length = {length}s, must be a multiple of the "
                         f"resolution ({resolution}s)")
    return length, resolution


class History:
    """Samples of every revision's ``(stable concurrency, panic concurrency, stable rps,
    panic rps)`` and of the server's figures, the newest ``length // resolution`` kept."""

    def __init__(self, length=DEFAULT_LENGTH, resolution=DEFAULT_RESOLUTION):
        self.length, self.resolution = check_history(length, resolution)
        self.size = self.length // self.resolution
        self.times = deque(maxlen=self.size)  # sample times, seconds since the epoch
        self.server = {name: deque(maxlen=self.size) for name in SERVER_SERIES}
        self._series = {}  # (namespace, name) -> array('f'), 4 values per slot
        self._blank = array("f", [_NAN]) * (4 * self.size)
        self._slot = -1  # the ring slot of the newest sample

    @property
    def enabled(self):
        return self.size > 0

    def __len__(self):
        return len(self._series)

    def due(self, now):
        """True when a sample is due at ``now`` (seconds)."""
        if not self.size:
            return False
        return not self.times or now - self.times[-1] >= self.resolution - 0.001

    def bytes_per_revision(self):
        """The bytes one revision's samples take, Python's overhead included."""
        return self._blank.itemsize * len(self._blank) + OVERHEAD_PER_REVISION

    def sample(self, now, revisions, server):
        """Record one sample at ``now`` (seconds): ``revisions`` is the aggregator's
        current ``RevisionAverages`` (every revision not among them is forgotten),
        ``server`` a dict of the ``SERVER_SERIES`` figures."""
        sampler = self.begin_sample()
        sampler.add(revisions)
        sampler.finish(now, server)

    def begin_sample(self):
        """A ``Sampler`` to record one sample a few revisions at a time; until its
        ``finish``, readers see the samples before it."""
        return Sampler(self)

    def revision(self, namespace, name):
        """The samples of one revision, oldest first, as four lists (stable and panic
        concurrency, stable and panic RPS; None where it had no figure), or None."""
        samples = self._series.get((namespace, name))
        if samples is None:
            return None
        count = len(self.times)
        first = (self._slot - count + 1) % self.size
        slots = [(first + i) % self.size * 4 for i in range(count)]
        return [[_finite(samples[s + k]) for s in slots] for k in range(4)]


def _finite(value):
    return round(value, 6) if math.isfinite(value) else None


class Sampler:
    """One sample of a ``History`` in the making: ``add`` revisions' averages (every
    revision tracked, in any number of calls), then ``finish``."""

    def __init__(self, history):
        self._history = history
        self._slot = (history._slot + 1) % history.size if history.size else 0
        self._new = {}

    def add(self, revisions):
        """Write the averages of these ``RevisionAverages`` into the new sample."""
        history = self._history
        if not history.size:
            return
        old, new, blank = history._series, self._new, history._blank
        base = self._slot * 4
        for r in revisions:
            key = (r.namespace, r.name)
            samples = old.get(key)
            if samples is None:
                samples = array("f", blank)
            samples[base] = r.stable_concurrency
            samples[base + 1] = r.panic_concurrency
            samples[base + 2] = r.stable_rps
            samples[base + 3] = r.panic_rps
            new[key] = samples

    def finish(self, now, server):
        """Complete the sample at ``now`` (seconds) with the server's figures; revisions
        not added are forgotten."""
        history = self._history
        if not history.size:
            return
        history.times.append(now)
        for name, values in history.server.items():
            values.append(server.get(name))
        history._slot = self._slot
        history._series = self._new
