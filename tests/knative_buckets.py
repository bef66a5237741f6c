"""Knative's one-averager ``TimedFloat64Buckets`` and ``WeightedFloat64Buckets``, ported
line by line: the reference ``statserver.aggregation.windows.RevisionBuckets`` (four
averagers in one ring) is tested against, and itself tested against Knative's own
cases in ``test_bucketing.py``."""

from statserver.aggregation.windows import (
    GO_ZERO_TIME,
    PRECISION,
    _bucket_count,
    compute_smoothing_coeff,
    go_pow_int,
    round_to_n_digits,
)
from statserver.constants import NS_PER_S


class TimedFloat64Buckets:
    """Knative's ``TimedFloat64Buckets``: a ring of buckets covering ``window``
    nanoseconds in steps of ``granularity`` nanoseconds (a whole number of seconds, at
    least one), whose :meth:`window_average` is the linear average."""

    __slots__ = ("buckets", "first_write", "last_write", "granularity", "window",
                 "window_total", "_granularity_s", "_zero_offset")

    def __init__(self, window, granularity):
        if granularity < NS_PER_S or window < granularity:
            raise ValueError(
                f"granularity must be at least 1s and window at least the granularity, "
                f"got window={window}ns granularity={granularity}ns")
        self.buckets = [0.0] * _bucket_count(window, granularity)
        self.first_write = GO_ZERO_TIME
        self.last_write = GO_ZERO_TIME
        self.granularity = granularity
        self.window = window
        self.window_total = 0.0
        self._granularity_s = granularity // NS_PER_S  # Go: int(granularity.Seconds())
        self._zero_offset = -GO_ZERO_TIME % granularity  # for Go's Truncate, precomputed

    def _truncate(self, t):
        return t - (t + self._zero_offset) % self.granularity

    def _index(self, t):
        # Go: int(t.Unix()) / int(granularity.Seconds()), reduced modulo len(buckets)
        # where it is used.
        return t // NS_PER_S // self._granularity_s

    def is_empty(self, now):
        """True when nothing was recorded during the window before ``now``."""
        return self._truncate(now) - self.last_write > self.window

    def record(self, now, value):
        """Add ``value`` to the bucket of time ``now``.

        Buckets between the last write and this one are zeroed; after a whole window
        without writes, every bucket is and the average starts again from this bucket;
        a value a window or more older than the last write is ignored.
        """
        bucket_time = now - (now + self._zero_offset) % self.granularity
        buckets = self.buckets
        write_idx = now // NS_PER_S // self._granularity_s
        last_write = self.last_write
        if last_write != bucket_time:
            if bucket_time + self.window <= last_write:
                return  # happened a window or more before the last write
            if self.first_write == GO_ZERO_TIME or self.first_write > bucket_time:
                self.first_write = bucket_time
            if bucket_time > last_write:
                if bucket_time - last_write >= self.window:
                    # No write for a whole window: start afresh.
                    self.first_write = bucket_time
                    for i in range(len(buckets)):
                        buckets[i] = 0.0
                    self.window_total = 0.0
                else:
                    n = len(buckets)
                    total = self.window_total
                    for i in range(self._index(last_write) + 1, write_idx + 1):
                        idx = i % n
                        total -= buckets[idx]
                        buckets[idx] = 0.0
                    self.window_total = total
                self.last_write = bucket_time
            # else: within the window before the last write; just add it.
        buckets[write_idx % len(buckets)] += value
        self.window_total += value

    def window_average(self, now):
        """The average bucket value over the window ending at ``now``, floored to
        6 decimals.

        Only the buckets since the first write count (a window that started 6 s ago
        averages 6 buckets); when the last write is older than ``now``, the buckets
        after it are dropped from the sum and from the count; after a whole window
        without writes the average is 0.
        """
        now = self._truncate(now)
        last_write = self.last_write
        d = now - last_write
        n = len(self.buckets)
        if d <= 0:
            num_b = min((last_write - self.first_write) // self.granularity + 1, n)
            return round_to_n_digits(PRECISION, self.window_total / num_b)
        if d < self.window:
            st_idx = self._index(last_write)
            e_idx = self._index(now)
            ret = self.window_total
            buckets = self.buckets
            for i in range(st_idx + 1, e_idx + 1):
                ret -= buckets[i % n]
            num_b = min((last_write - self.first_write) // self.granularity + 1,
                        n - (e_idx - st_idx))
            if num_b <= 0:  # not reachable with whole-second windows; Go gives ±Inf
                return 0.0
            return round_to_n_digits(PRECISION, ret / num_b)
        return 0.0

    def resize_window(self, window, now):
        """Knative's ``ResizeWindow`` (``now`` is Go's ``time.Now()`` there): keep the
        most recent buckets that fit a window of ``window`` nanoseconds."""
        if window == self.window:
            return
        num_buckets = _bucket_count(window, self.granularity)
        new_buckets = [0.0] * num_buckets
        new_total = 0.0
        if self._truncate(now) - self.last_write <= self.window:
            old_num = len(self.buckets)
            t_idx = self._index(self.last_write)
            for _ in range(min(num_buckets, old_num)):
                value = self.buckets[t_idx % old_num]
                new_buckets[t_idx % num_buckets] = value
                new_total += value
                t_idx -= 1
            self.first_write = self.last_write - (old_num - 1) * self.granularity
        else:
            self.first_write = GO_ZERO_TIME
        self.window = window
        self.buckets = new_buckets
        self.window_total = new_total

    def for_each_bucket(self, now):
        """``(bucket time, value)`` of each bucket still in the window at ``now``,
        newest first (Knative's test helper ``forEachBucket``)."""
        now = self._truncate(now)
        n = len(self.buckets)
        count = n - (now - self.last_write) // self.granularity
        bucket_time = self.last_write
        idx = self._index(bucket_time)
        for _ in range(count):
            yield bucket_time, self.buckets[idx % n]
            idx -= 1
            bucket_time -= self.granularity


class WeightedFloat64Buckets(TimedFloat64Buckets):
    """Knative's ``WeightedFloat64Buckets``: the same ring, averaged with exponentially
    decaying weights, the newest bucket weighing α, the one before α(1-α), and so on."""

    __slots__ = ("smoothing_coeff",)

    def __init__(self, window, granularity):
        super().__init__(window, granularity)
        self.smoothing_coeff = compute_smoothing_coeff(_bucket_count(window, granularity))

    def window_average(self, now):
        """The exponentially weighted average at ``now`` (not rounded, as in Knative);
        each bucket since the last write counts as a zero."""
        now = self._truncate(now)
        last_write = self.last_write
        if now - last_write > self.window:
            return 0.0
        total_b = num_b = len(self.buckets)
        coeff = self.smoothing_coeff
        multiplier = coeff
        if now > last_write:
            num_z = (now - last_write) // self.granularity
            multiplier = multiplier * go_pow_int(1 - coeff, num_z)
            num_b -= num_z
        start_idx = self._index(last_write) + total_b
        buckets = self.buckets
        ret = 0.0
        for i in range(num_b):
            ret += buckets[(start_idx - i) % total_b] * multiplier
            multiplier *= 1 - coeff
        return ret

    def resize_window(self, window, now):
        """Resize as :meth:`TimedFloat64Buckets.resize_window` and recompute α."""
        super().resize_window(window, now)
        self.smoothing_coeff = compute_smoothing_coeff(
            _bucket_count(window, self.granularity))
