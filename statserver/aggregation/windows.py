"""Knative's windowed averagers, number for number.

What Knative Serving's ``TimedFloat64Buckets`` (the linear window average) and
``WeightedFloat64Buckets`` (the weighted-exponential one) of
``pkg/autoscaler/aggregation/bucketing.go`` compute, for the four averagers of a
revision in one ring (``RevisionBuckets``; the one-averager ports it is tested against
are ``tests/knative_buckets.py``): a ring of per-granularity sums, stale
buckets zeroed when time moves on, values older than the window ignored, the linear
average divided by the number of buckets since the first write and floored to 6
decimals, the weighted average with weights ``α(1-α)^i``.

Times and durations are **int nanoseconds** (times since the Unix epoch, as in
:class:`statserver.model.StatMessage`), so that every comparison Knative makes on Go's
``time.Time`` and ``time.Duration`` is made here on the same integers:

- a time is truncated to the granularity the way Go's ``Time.Truncate`` does it, as a
  multiple of the granularity since Go's zero time (0001-01-01 UTC), not since 1970
  (the two agree for every granularity that divides a day);
- a bucket's index is ``Unix seconds // granularity seconds``, from the untruncated time
  on ``record`` as in Knative;
- "never written" is Go's zero time, so the first write starts a fresh window;
- ``pow`` is Go's ``math.Pow`` (repeated squaring for the integer powers the weighted
  average takes), and the smoothing coefficients are the ones Go computes (see
  ``_GO_SMOOTHING``).

Times before 1970 are outside the domain (Go would index a negative bucket there).
No locks: use one instance from one thread, as the reactor does.
"""

import math

from statserver.constants import GO_ZERO_TIME_NS as GO_ZERO_TIME
from statserver.constants import NS_PER_S

#: Digits Knative keeps in a linear window average (``precision``).
PRECISION = 6
#: Knative's ``weightPrecision``: the weights sum to at least this much over a window.
WEIGHT_PRECISION = 0.9999
#: Knative's ``minExponent``: the smallest smoothing coefficient.
MIN_EXPONENT = 0.2

# 1 - math.Pow(1 - weightPrecision, 1/nb) for nb = 1..41 buckets, as Go (1.19, amd64)
# computes it; from 42 buckets on the coefficient is MIN_EXPONENT. Go's Pow takes
# Exp(y*Log(x)) with Go's own Exp and Log, which differ from C's in the last bit for ten
# of these, hence a table of Go's results rather than Python's ``**``. (In Go the
# ``1 - weightPrecision`` is a constant expression, exactly 0.0001.)
_GO_SMOOTHING = tuple(float.fromhex(h) for h in (
    "0x1.fff2e48e8a71ep-01", "0x1.fae147ae147aep-01", "0x1.e83c2d3b29cp-01",
    "0x1.ccccccccccccdp-01", "0x1.aeda7cea25322p-01", "0x1.91b164c4fd313p-01",
    "0x1.76a55ea2d4d4ep-01", "0x1.5e1764edbdb78p-01", "0x1.47ff2a61354fp-01",
    "0x1.342b4c0456da6p-01", "0x1.225e0f651c875p-01", "0x1.1259c44fa1806p-01",
    "0x1.03e5af817ed46p-01", "0x1.ed9f2dd0e590ep-02", "0x1.d5d7a7d79085ap-02",
    "0x1.c029987c78fc4p-02", "0x1.ac5470e8ff2d6p-02", "0x1.9a20ccf9a6fcp-02",
    "0x1.895f1628af6c4p-02", "0x1.79e651612571p-02", "0x1.6b931928b3aep-02",
    "0x1.5e46c0b49361p-02", "0x1.51e69ace24b4p-02", "0x1.465b5f317cceep-02",
    "0x1.3b90a9762c476p-02", "0x1.31748d3187e76p-02", "0x1.27f73ba9a9826p-02",
    "0x1.1f0ab80c3dbfcp-02", "0x1.16a297a46649p-02", "0x1.0eb3cbfe2917ep-02",
    "0x1.073475458629p-02", "0x1.001bbb7dd44ccp-02", "0x1.f2c35adc3c7cp-03",
    "0x1.e5fe48a6c07a8p-03", "0x1.d9db5727d3cc8p-03", "0x1.ce4ed7a33b78p-03",
    "0x1.c34e31a9a83p-03", "0x1.b8cfc3c10b5acp-03", "0x1.aecac826245d8p-03",
    "0x1.a5373d0c8ef3p-03", "0x1.9c0dcfdbc3fbcp-03",
))


def go_truncate(t, d):
    """Go's ``Time.Truncate(d)``: ``t`` rounded down to a multiple of ``d`` since Go's
    zero time (``t`` unchanged when ``d <= 0``)."""
    if d <= 0:
        return t
    return t - (t - GO_ZERO_TIME) % d


def round_to_n_digits(n, f):
    """Knative's ``roundToNDigits``: ``f`` floored (not rounded) to ``n`` decimals."""
    p = 10.0**n
    x = f * p
    if x - x != 0.0:  # inf or nan: Go's Floor passes them through
        return x / p
    return math.floor(x) / p


def go_pow_int(x, k):
    """Go's ``math.Pow(x, float64(k))`` for an int ``k >= 0`` and finite ``x > 0``.

    Go multiplies the mantissas by repeated squaring and scales by the exponent once at
    the end, which rounds differently from C's ``pow``.
    """
    if k == 0 or x == 1.0:
        return 1.0
    if k == 1:
        return x
    a1, ae = 1.0, 0
    x1, xe = math.frexp(x)
    while k:
        if xe < -4096 or 4096 < xe:
            ae += xe  # underflows (or overflows) for good: Go lets it happen
            break
        if k & 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        k >>= 1
    return math.ldexp(a1, ae)


def compute_smoothing_coeff(nb):
    """Knative's ``computeSmoothingCoeff``: α for a window of ``nb`` buckets,
    ``max(1 - 0.0001^(1/nb), 0.2)`` as Go computes it."""
    if nb == int(nb) and 1 <= nb <= len(_GO_SMOOTHING):
        return _GO_SMOOTHING[int(nb) - 1]
    return max(1 - (1 - WEIGHT_PRECISION) ** (1 / nb), MIN_EXPONENT)


def _bucket_count(window, granularity):
    # Go: int(math.Ceil(float64(window) / float64(granularity)))
    return math.ceil(window / granularity)


class RevisionBuckets:
    """Knative's four averagers of one revision in one ring: concurrency and RPS, each
    over a stable and a panic window of whole seconds, with 1-second buckets.

    Number for number what four :class:`TimedFloat64Buckets` (or, with ``weighted``,
    :class:`WeightedFloat64Buckets`) of one-second granularity compute when fed the same
    records, in about a quarter of the time: the four receive the same times, so they
    share one ring of the stable window's length, and the panic window's buckets are the
    newest of the stable ones. (Its panic ring would hold, for every second it still
    covers, exactly the stable ring's value; what differs is kept apart: the panic
    window's own first write and running totals, whose additions and subtractions are
    made in Knative's order.) ``tests/test_bucketing.py`` checks the equivalence on random
    records and reads.
    """

    __slots__ = ("stable", "panic", "concurrency", "rps", "last_write", "stable_first",
                 "panic_first", "stable_concurrency_total", "stable_rps_total",
                 "panic_concurrency_total", "panic_rps_total", "weighted", "stable_coeff",
                 "panic_coeff")

    def __init__(self, stable, panic, *, weighted=False):
        if not 1 <= panic <= stable:
            raise ValueError(f"windows must be 1 <= panic <= stable seconds, got {stable}, {panic}")
        self.stable = stable
        self.panic = panic
        self.concurrency = [0.0] * stable  # the ring: second t's sum at t % stable
        self.rps = [0.0] * stable
        self.last_write = self.stable_first = self.panic_first = GO_ZERO_TIME // NS_PER_S
        self.stable_concurrency_total = self.stable_rps_total = 0.0
        self.panic_concurrency_total = self.panic_rps_total = 0.0
        self.weighted = weighted
        self.stable_coeff = compute_smoothing_coeff(stable)
        self.panic_coeff = compute_smoothing_coeff(panic)

    def record(self, now, concurrency, rps):
        """Add ``concurrency`` and ``rps`` at ``now`` (int ns) to all four averagers."""
        b = now // NS_PER_S
        last = self.last_write
        ns = self.stable
        if b == last:  # another stat in the newest second: the common case
            i = b % ns
            self.concurrency[i] += concurrency
            self.rps[i] += rps
            self.stable_concurrency_total += concurrency
            self.stable_rps_total += rps
            self.panic_concurrency_total += concurrency
            self.panic_rps_total += rps
            return
        conc = self.concurrency
        reqs = self.rps
        np_ = self.panic
        if b == last + 1 and ns > 1:
            # The next second: what the general case below does, unrolled. The panic
            # window drops second b - panic (or starts afresh when it is 1 s long), the
            # stable one drops second b - stable, whose bucket becomes second b's.
            self.last_write = b
            i = b % ns
            if np_ > 1:
                j = (b - np_) % ns
                self.panic_concurrency_total = (self.panic_concurrency_total - conc[j]
                                                + concurrency)
                self.panic_rps_total = self.panic_rps_total - reqs[j] + rps
            else:
                self.panic_first = b
                self.panic_concurrency_total = 0.0 + concurrency
                self.panic_rps_total = 0.0 + rps
            self.stable_concurrency_total = (self.stable_concurrency_total - conc[i]
                                             + concurrency)
            self.stable_rps_total = self.stable_rps_total - reqs[i] + rps
            conc[i] = 0.0 + concurrency
            reqs[i] = 0.0 + rps
            return
        if b > last:
            gap = b - last
            # The panic ring first: it drops the seconds t - panic for t in (last, b],
            # which the stable ring still holds (it zeroes older ones just below).
            if gap >= np_:
                self.panic_first = b
                self.panic_concurrency_total = 0.0
                self.panic_rps_total = 0.0
            else:
                pc = self.panic_concurrency_total
                pr = self.panic_rps_total
                for t in range(last + 1 - np_, b + 1 - np_):
                    j = t % ns
                    pc -= conc[j]
                    pr -= reqs[j]
                self.panic_concurrency_total = pc
                self.panic_rps_total = pr
            if gap >= ns:
                self.stable_first = b
                for j in range(ns):
                    conc[j] = 0.0
                    reqs[j] = 0.0
                self.stable_concurrency_total = 0.0
                self.stable_rps_total = 0.0
            else:
                sc = self.stable_concurrency_total
                sr = self.stable_rps_total
                for t in range(last + 1, b + 1):
                    j = t % ns
                    sc -= conc[j]
                    conc[j] = 0.0
                    sr -= reqs[j]
                    reqs[j] = 0.0
                self.stable_concurrency_total = sc
                self.stable_rps_total = sr
            self.last_write = b
            i = b % ns
            conc[i] += concurrency
            reqs[i] += rps
            self.stable_concurrency_total += concurrency
            self.stable_rps_total += rps
            self.panic_concurrency_total += concurrency
            self.panic_rps_total += rps
            return
        # A late stat (b < last): each window takes it if it is still within it.
        if b + ns <= last:
            return
        if b < self.stable_first:
            self.stable_first = b
        i = b % ns
        conc[i] += concurrency
        reqs[i] += rps
        self.stable_concurrency_total += concurrency
        self.stable_rps_total += rps
        if b + np_ > last:
            if b < self.panic_first:
                self.panic_first = b
            self.panic_concurrency_total += concurrency
            self.panic_rps_total += rps

    def averages(self, now):
        """``(stable concurrency, panic concurrency, stable rps, panic rps)`` at ``now``
        (int ns), each as Knative's ``WindowAverage`` of that averager."""
        now = now // NS_PER_S
        stable, panic = self.stable, self.panic
        if self.weighted:
            average = self._weighted
            return (average(self.concurrency, stable, self.stable_coeff, now),
                    average(self.concurrency, panic, self.panic_coeff, now),
                    average(self.rps, stable, self.stable_coeff, now),
                    average(self.rps, panic, self.panic_coeff, now))
        average = self._linear
        return (average(self.concurrency, self.stable_concurrency_total, self.stable_first,
                        stable, now),
                average(self.concurrency, self.panic_concurrency_total, self.panic_first,
                        panic, now),
                average(self.rps, self.stable_rps_total, self.stable_first, stable, now),
                average(self.rps, self.panic_rps_total, self.panic_first, panic, now))

    def _linear(self, ring, total, first, n, now):
        # TimedFloat64Buckets.window_average for a window of n seconds whose bucket of
        # second t is ring[t % len(ring)].
        last = self.last_write
        d = now - last
        if d <= 0:
            return round_to_n_digits(PRECISION, total / min(last - first + 1, n))
        if d < n:
            ns = self.stable
            for t in range(last + 1 - n, now + 1 - n):  # what the n-ring holds there
                total -= ring[t % ns]
            return round_to_n_digits(PRECISION, total / min(last - first + 1, n - d))
        return 0.0

    def _weighted(self, ring, n, coeff, now):
        # WeightedFloat64Buckets.window_average, likewise.
        last = self.last_write
        if now - last > n:
            return 0.0
        num_b = n
        multiplier = coeff
        if now > last:
            num_z = now - last
            multiplier = multiplier * go_pow_int(1 - coeff, num_z)
            num_b -= num_z
        ns = self.stable
        ret = 0.0
        for i in range(num_b):
            ret += ring[(last - i) % ns] * multiplier
            multiplier *= 1 - coeff
        return ret
