"""The two protobuf decoders: ``statserver.formats``' pure-Python one (the reference) and
the compiled one of ``statserver._speedups``."""

import os

import pytest

from statserver import formats


def compiled():
    """``statserver._speedups``' decoder; a test that needs it fails in CI (``CI=true``,
    where the extension must have been built) and is skipped elsewhere."""
    decode = formats.compiled_decode_protobuf()
    if decode is None:
        message = "statserver._speedups is not built (no C compiler at install time?)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return decode


def both():
    """``[("pure", decode), ("compiled", decode)]``, for tests that loop over both (a
    hypothesis test cannot be parametrised here: pytest-twisted runs it only once)."""
    return [("pure", formats.pure_decode_protobuf), ("compiled", compiled())]
