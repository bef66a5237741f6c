"""The two protobuf decoders: ``statserver.wire``' pure-Python one (the reference) and
the compiled one of ``statserver._speedups``."""

import pytest

from statserver.wire import protostat


def compiled():
    """``statserver._speedups``' decoder; a test that needs it is skipped where it is not
    built (a failure under CI=true, see conftest.py)."""
    decode = protostat.compiled_decode_protobuf()
    if decode is None:
        pytest.skip("statserver._speedups is not built (no C compiler at install time?)")
    return decode


def both():
    """``[("pure", decode), ("compiled", decode)]``, for tests that loop over both (a
    hypothesis test cannot be parametrised here: pytest-twisted runs it only once)."""
    return [("pure", protostat.pure_decode_protobuf), ("compiled", compiled())]
