"""Knative's bucketing tests (``pkg/autoscaler/aggregation/bucketing_test.go``), ported.

Knative's tests start from ``time.Now()``; these run each case from several start times
(whole seconds and arbitrary nanoseconds) since the results must not depend on it.
Every expected number is Knative's own, compared with ``==`` as Go compares them. The
weighted-average cases are taken from libkpa's copy of Knative's file (the stored Knative
versions predate them).
The figures of Go's primitives (``Truncate``, ``math.Pow``) were printed by Go 1.19 on
amd64.
"""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from knative_buckets import TimedFloat64Buckets, WeightedFloat64Buckets

from statserver.aggregation.windows import (
    GO_ZERO_TIME,
    MIN_EXPONENT,
    NS_PER_S,
    RevisionBuckets,
    compute_smoothing_coeff,
    go_pow_int,
    go_truncate,
    round_to_n_digits,
)

S = NS_PER_S
MS = S // 1000
MINUTE = 60 * S
GRANULARITY = S

NOWS = [1_552_572_567_770_464_932, 1_700_000_000 * S, 1_700_000_006_999_999_999,
        1_764_300_000_400_000_000]


@pytest.fixture(params=NOWS, ids=lambda ns: str(ns))
def now(request):
    return request.param


def bucket_sums(buckets, at):
    return {t: v for t, v in buckets.for_each_bucket(at) if v > 0}


# --- Go's primitives -------------------------------------------------------------------

@pytest.mark.parametrize("t, d, want", [
    (1552572567770464932, S, 1552572567000000000),
    (1552572567770464932, 5 * S, 1552572565000000000),
    (1552572567770464932, 7 * S, 1552572563000000000),
    (1552572567770464932, 7 * 3600 * S, 1552564800000000000),
    (1700000000000000000, 7 * S, 1699999997000000000),  # not 1699999994 (Unix-based)
    (1700000006999999999, 5 * S, 1700000005000000000),
    (1700000006999999999, 7 * S, 1700000004000000000),
    (1700000006999999999, 0, 1700000006999999999),
])
def test_truncate_is_gos(t, d, want):
    assert go_truncate(t, d) == want


@pytest.mark.parametrize("k, want", [
    (0, "0x1p+0"), (1, "0x1.b93a6cec0b3b4p-03"), (2, "0x1.7c3d2c4d63ffap-05"),
    (3, "0x1.47ae147ae1481p-07"), (5, "0x1.e6b4b396428f7p-12"),
    (17, "0x1.469f6e53c75e5p-38"), (59, "0x1.4378b6401d17ep-131"),
])
def test_integer_pow_is_gos(k, want):
    x = 1 - compute_smoothing_coeff(6)
    assert x == float.fromhex("0x1.b93a6cec0b3b4p-03")
    assert go_pow_int(x, k) == float.fromhex(want)


def test_smoothing_coeff_as_go_computes_it():
    # Go 1.19 amd64: 1 - math.Pow(0.0001, 1/nb) for a few nb where C's pow differs.
    assert compute_smoothing_coeff(3) == float.fromhex("0x1.e83c2d3b29cp-01")
    assert compute_smoothing_coeff(25) == float.fromhex("0x1.3b90a9762c476p-02")
    assert compute_smoothing_coeff(35) == float.fromhex("0x1.d9db5727d3cc8p-03")
    assert compute_smoothing_coeff(42) == 0.2
    assert compute_smoothing_coeff(3600) == 0.2


# --- TestComputeDecayMultiplier ----------------------------------------------------------

@pytest.mark.parametrize("nb, want", [(100, MIN_EXPONENT), (60, MIN_EXPONENT),
                                      (40, 0.20567), (6, 0.78456)])
def test_compute_decay_multiplier(nb, want):
    # Knative's tolerance is weightPrecision (0.9999), which tests nothing; 5 decimals do.
    assert abs(compute_smoothing_coeff(nb) - want) < 1e-5


# --- TestTimedFloat64BucketsSimple ------------------------------------------------------

@pytest.mark.parametrize("granularity, stats, want", [
    (S, [(0, 1.0), (100 * MS, 10.0), (S, 1.0), (3 * S, 1.0)],
     {0: 11.0, S: 1.0, 3 * S: 1.0}),
    (5 * S, [(0, 1.0), (3 * S, 11.0), (6 * S, 1.0)], {0: 12.0, 5 * S: 1.0}),
    (S, [], {}),
], ids=["granularity = 1s", "granularity = 5s", "empty"])
def test_simple(now, granularity, stats, want):
    trunc1 = go_truncate(now, S)
    base = go_truncate(now, granularity)
    buckets = TimedFloat64Buckets(2 * MINUTE, granularity)
    assert buckets.is_empty(trunc1)
    for offset, value in stats:
        buckets.record(base + offset, value)
    got = bucket_sums(buckets, trunc1 + MINUTE)
    assert got == {base + offset: value for offset, value in want.items()}


# --- TestTimedFloat64BucketsManyReps (and ...WithNonMonotonicalOrder) -------------------

def test_many_reps(now):
    trunc1 = go_truncate(now, GRANULARITY)
    buckets = TimedFloat64Buckets(MINUTE, GRANULARITY)
    for p in range(5):
        trunc1 += GRANULARITY
        for t in range(5):
            buckets.record(trunc1, float(p + t))
    assert sum(v for _, v in buckets.for_each_bucket(trunc1)) == 100.0
    assert sum(v for _, v in buckets.for_each_bucket(trunc1)) == 100.0


def test_many_reps_with_non_monotonical_order(now):
    start = go_truncate(now, GRANULARITY)
    end = start
    buckets = TimedFloat64Buckets(MINUTE, GRANULARITY)
    for p, d in enumerate([0, 3, 2, 1, 4]):
        end = start + d * GRANULARITY
        for t in range(5):
            buckets.record(end, float(p + t))
    assert sum(v for _, v in buckets.for_each_bucket(end)) == 100.0


# --- TestTimedFloat64BucketsWindowAverage -----------------------------------------------

def test_window_average(now):
    buckets = TimedFloat64Buckets(5 * S, GRANULARITY)

    # firstWrite is used: without it this would be 0.2.
    buckets.record(now, 1)
    assert buckets.window_average(now) == 1.0
    for i in range(1, 5):
        buckets.record(now + i * S, float(i + 1))
    assert buckets.window_average(now + 4 * S) == 15.0 / 5
    # `now` lagging behind.
    assert buckets.window_average(now + 3600 * MS) == 15.0 / 5
    # A short hole.
    assert buckets.window_average(now + 6 * S) == (15.0 - 1 - 2) / (5 - 2)
    # A long hole.
    assert buckets.window_average(now + 10 * S) == 0.0
    # A write after a hole.
    buckets.record(now + 6 * S, 91)
    assert buckets.window_average(now + 6 * S) == (15.0 - 1 - 2 + 91) / 5

    # Much farther on.
    now += MINUTE
    buckets.record(now, 1984)
    assert buckets.window_average(now) == 1984.0
    # An earlier time.
    buckets.record(now - 3 * S, 4)
    assert buckets.window_average(now) == (4.0 + 1984) / 4
    # One more second.
    now += S
    buckets.record(now, 5)
    assert buckets.window_average(now) == (4.0 + 1984 + 5) / 5
    # An earlier time again.
    buckets.record(now - 3 * S, 10)
    assert buckets.window_average(now) == (4.0 + 10 + 1984 + 5) / 5
    # A value too early is ignored.
    buckets.record(now - 6 * S, 10)
    assert buckets.window_average(now) == (4.0 + 10 + 1984 + 5) / 5
    # So is one exactly a window before the last write.
    buckets.record(now - 5 * S, 10)
    assert buckets.window_average(now) == (4.0 + 10 + 1984 + 5) / 5
    # No data for exactly a window: everything before is cleared.
    buckets.record(now + 5 * S, 10)
    assert buckets.window_average(now + 5 * S) == 10.0


def test_descending_record(now):
    buckets = TimedFloat64Buckets(5 * S, S)
    for i in range(8, -1, -1):
        buckets.record(now + i * S, 5)
    # A 5 every second, never twice in one second.
    assert buckets.window_average(now + 5 * S) == 5.0


def test_holes(now):
    buckets = TimedFloat64Buckets(5 * S, GRANULARITY)
    for i in range(5):
        buckets.record(now + i * S, float(i + 1))
    assert sum(v for _, v in buckets.for_each_bucket(now + 4 * S)) == 15.0
    assert buckets.window_average(now + 4 * S) == 15.0 / 5
    # A write at the 9th second zeroes seconds 5, 6 and 7: [3] = 2, [4] = 5 remain.
    buckets.record(now + 8 * S, 2.0)
    assert sum(v for _, v in buckets.for_each_bucket(now + 8 * S)) == 7.0


# --- TestTimedFloat64BucketsWindowUpdate (ResizeWindow) ---------------------------------

def test_window_update(now):
    start = now
    buckets = TimedFloat64Buckets(5 * S, GRANULARITY)
    for i in range(6):  # fills the ring and rolls over
        buckets.record(start + i * S, float(i + 1))
    now = start + 5 * S

    want_initial = 2.0 + 3 + 4 + 5 + 6
    assert sum(v for _, v in buckets.for_each_bucket(now)) == want_initial
    assert buckets.window_average(now) == want_initial / 5

    buckets.resize_window(10 * S, now)
    assert len(buckets.buckets) == 10
    assert buckets.window == 10 * S
    assert sum(v for _, v in buckets.for_each_bucket(now)) == want_initial
    # The average does not change: at most 5 buckets were ever recorded.
    assert buckets.window_average(now) == want_initial / 5

    now += S
    buckets.record(now, 7)
    want_with_update = want_initial + 7
    assert sum(v for _, v in buckets.for_each_bucket(now)) == want_with_update
    assert buckets.window_average(now) == round_to_n_digits(6, want_with_update / 6)

    buckets.resize_window(4 * S, now)
    assert len(buckets.buckets) == 4
    want_with_shrink = want_with_update - 2 - 3  # the 2 oldest are gone
    assert sum(v for _, v in buckets.for_each_bucket(now)) == want_with_shrink
    assert buckets.window_average(now) == want_with_shrink / 4

    ring = buckets.buckets
    buckets.resize_window(4 * S, now)
    assert buckets.buckets is ring  # same window: nothing changes


def test_window_update_3s_granularity(now):
    granularity = 3 * S
    trunc1 = go_truncate(now, granularity)
    buckets = TimedFloat64Buckets(5 * S, granularity)
    assert len(buckets.buckets) == 2  # ceil(5/3)

    for offset, value in [(0, 10), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7)]:
        buckets.record(trunc1 + offset * S, value)  # the 7 overrides the first 15
    want = (4.0 + 5 + 6) + 7
    assert sum(v for _, v in buckets.for_each_bucket(trunc1 + 6 * S)) == want

    buckets.resize_window(10 * S, trunc1 + 6 * S)
    assert len(buckets.buckets) == 4
    assert buckets.window == 10 * S
    assert sum(v for _, v in buckets.for_each_bucket(trunc1 + 6 * S)) == want

    buckets.record(trunc1 + 9 * S + 300 * MS, 42)
    want += 42
    assert sum(v for _, v in buckets.for_each_bucket(trunc1 + 9 * S)) == want

    buckets.resize_window(4 * S, trunc1 + 9 * S)
    assert len(buckets.buckets) == 2
    # The oldest bucket and the one not yet used are dropped.
    assert sum(v for _, v in buckets.for_each_bucket(trunc1 + 9 * S)) == 42 + 7

    ring = buckets.buckets
    buckets.resize_window(4 * S, trunc1 + 9 * S)
    assert buckets.buckets is ring


def test_window_update_no_op(now):
    start = now - MINUTE
    buckets = TimedFloat64Buckets(5 * S, GRANULARITY)
    buckets.record(start, 19.82)
    assert buckets.first_write == buckets.last_write
    buckets.resize_window(10 * S, now)
    assert buckets.first_write == GO_ZERO_TIME


def test_round_to_n_digits():
    assert round_to_n_digits(6, 3.6e-17) == 0.0
    assert round_to_n_digits(3, 0.0004) == 0.0
    assert round_to_n_digits(3, 1.2345) == 1.234
    assert round_to_n_digits(4, 1.2345) == 1.2345
    assert round_to_n_digits(6, 12345) == 12345.0
    # Floored, not rounded (Go: math.Floor(f*p)/p).
    assert round_to_n_digits(6, 0.1234569) == 0.123456
    assert round_to_n_digits(6, -0.0000001) == -0.000001
    assert math.isnan(round_to_n_digits(6, math.nan))
    assert round_to_n_digits(6, math.inf) == math.inf


# --- Weighted: TestTimedFloat64BucketsWeightedAverage, ...ResizeWindow ------------------

def test_weighted_average(now):
    buckets = WeightedFloat64Buckets(5 * S, GRANULARITY)
    m = buckets.smoothing_coeff

    buckets.record(now, 2)
    want = 2 * m
    assert buckets.window_average(now) == want

    # One second later, no write.
    want *= 1 - m
    assert buckets.window_average(now + S) == want
    buckets.record(now + S, 2)
    want += 2 * m
    assert buckets.window_average(now + S) == want

    # Fill the window with [2, 3, 4, 5, 6].
    for i in range(5):
        buckets.record(now + (2 + i) * S, float(i + 2))
    want = (6 * m + 5 * m * (1 - m) + 4 * m * (1 - m) * (1 - m)
            + 3 * m * (1 - m) * (1 - m) * (1 - m) + 2 * m * (1 - m) * (1 - m) * (1 - m) * (1 - m))
    assert buckets.window_average(now + 6 * S) == want

    # An empty window.
    assert buckets.window_average(now + 16 * S) == 0.0


def test_weighted_resize_window(now):
    buckets = WeightedFloat64Buckets(5 * S, GRANULARITY)
    assert buckets.smoothing_coeff == compute_smoothing_coeff(5)
    for i in range(6):
        buckets.record(now + i * S, float(i + 1))
    at = now + 5 * S
    assert sum(v for _, v in buckets.for_each_bucket(at)) == 2.0 + 3 + 4 + 5 + 6
    # 5.8115797...: Knative's roundToNDigits floors, so 5.811. (libkpa's copy of this
    # test says 5.812, having switched roundToNDigits to math.Round.)
    assert round_to_n_digits(3, buckets.window_average(at)) == 5.811

    buckets.resize_window(10 * S, at)
    assert len(buckets.buckets) == 10
    assert buckets.window == 10 * S
    assert buckets.smoothing_coeff == compute_smoothing_coeff(10)


def test_weighted_ignores_nothing_linear_would_keep(now):
    # Both rings see the same writes; only the averaging differs.
    base = go_truncate(now, S)
    linear = TimedFloat64Buckets(6 * S, S)
    weighted = WeightedFloat64Buckets(6 * S, S)
    for offset, value in [(0, 1.0), (2 * S, 4.0), (-9 * S, 100.0), (3 * S + 500 * MS, 2.0)]:
        linear.record(base + offset, value)
        weighted.record(base + offset, value)
    assert linear.buckets == weighted.buckets
    assert linear.window_average(base + 3 * S) == 7.0 / 4


def test_granularity_below_one_second_is_refused():
    with pytest.raises(ValueError):
        TimedFloat64Buckets(5 * S, 500 * MS)


# --- RevisionBuckets: the four averagers in one ring, number for number ------------------

VALUES = st.one_of(  # sums of these round differently in every order
    st.sampled_from([0.0, 1.0, 0.1, 0.3, 2.5, 1e-7, 123.456, 7.0 / 3, -0.7, 1e6 + 0.1, 1e16]),
    st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))
STEPS = st.one_of(  # ns between records: same second, next ones, gaps, late stats
    st.integers(0, 999_999_999), st.integers(1, 3).map(lambda s: s * S),
    st.integers(2, 70).map(lambda s: s * S + 123), st.integers(-20, -1).map(lambda s: s * S))


@settings(max_examples=400, deadline=None)
@given(stable=st.integers(1, 12), panic_share=st.floats(0, 1), weighted=st.booleans(),
       start=st.sampled_from(NOWS),
       ops=st.lists(st.tuples(STEPS, VALUES, VALUES, st.integers(-3, 30)), max_size=40))
def test_revision_buckets_is_four_knative_averagers(stable, panic_share, weighted, start, ops):
    panic = max(1, round(stable * panic_share))
    kind = WeightedFloat64Buckets if weighted else TimedFloat64Buckets
    reference = [kind(stable * S, S), kind(panic * S, S), kind(stable * S, S),
                 kind(panic * S, S)]
    fused = RevisionBuckets(stable, panic, weighted=weighted)
    at = start
    for step, concurrency, rps, read_after in ops:
        at += step
        for ring, value in zip(reference, (concurrency, concurrency, rps, rps), strict=True):
            ring.record(at, value)
        fused.record(at, concurrency, rps)
        now = at + read_after * S
        assert fused.averages(now) == tuple(ring.window_average(now) for ring in reference)
        # The state too, since flooring to 6 decimals hides most last-bit differences.
        assert (fused.stable_concurrency_total, fused.panic_concurrency_total,
                fused.stable_rps_total, fused.panic_rps_total) == tuple(
                    ring.window_total for ring in reference)
        assert (list(fused.concurrency), list(fused.rps)) == (reference[0].buckets,
                                                              reference[2].buckets)
        last = fused.last_write
        assert last * S == reference[1].last_write
        for second in range(last - panic + 1, last + 1):
            assert fused.concurrency[second % stable] == reference[1].buckets[second % panic]
            assert fused.rps[second % stable] == reference[3].buckets[second % panic]
