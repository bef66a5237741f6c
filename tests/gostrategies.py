"""Hypothesis strategies for Go values in the gob codec's generic form, shared by the
round-trip tests and the Go-interop tests."""

from hypothesis import strategies as st

from statserver.gob import GoTime
from statserver.gob import gotypes as gt


def go_ints(t):
    """Every value of the Go integer type ``t`` (signed or unsigned, ``t.bits`` wide)."""
    if t.wire_id == gt.INT_ID:
        return st.integers(-(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1)
    return st.integers(0, (1 << t.bits) - 1)


def go_times(last_second):
    """``GoTime`` values from year 1 to ``last_second`` (Unix seconds), UTC or zoned."""
    return st.builds(
        GoTime,
        st.integers(-62135596800, last_second),
        st.integers(0, 999_999_999),
        # Go's UnmarshalBinary reads a version-2 offset's seconds byte unsigned, so a
        # negative offset with seconds does not come back (in Go either): whole minutes,
        # or seconds east of UTC only.
        st.one_of(
            st.none(),
            st.integers(-32768, 32767).filter(lambda m: m != -1).map(lambda m: m * 60),
            st.integers(1, 32767 * 60),
        ),
    )
