"""Every vector in ``$GOB_VECTORS`` (default ``tests/data/gob-vectors``) held to the contract
of ``tests/data/README.md``: valid streams decode (generically) to exactly the canonical
values; structural invalid ones raise GobError; the others raise GobError or return; none
raises anything else or takes a second. And every vector gives the same outcome on every
path of the decoder (interpreted, compiled, a sender's first, second and warm frame),
generically and typed into the server's StatMessage target."""

import base64
import math
import time
from datetime import datetime, timedelta

import pytest
from gobpaths import assert_paths_agree
from shared_data import gob_vector_files, read_jsonl

from statserver.gob import (
    FrozenStruct,
    GobError,
    GoInterface,
    GoOpaque,
    GoTime,
    decode_all,
)
from statserver.gob.decoder import clear_cache
from statserver.wire.gobstat import _StatMessage


def _load():
    return [
        pytest.param(case, id=f"{path.stem}:{case['name']}")
        for path in gob_vector_files()
        for case in read_jsonl(path)
    ]


def _float_matches(got, exp):
    if isinstance(exp, str):
        return (
            (exp == "NaN" and math.isnan(got))
            or (exp == "+Inf" and got == math.inf)
            or (exp == "-Inf" and got == -math.inf)
        )
    return isinstance(exp, (int, float)) and not isinstance(exp, bool) and got == exp


def _rfc3339(t):
    """Go's RFC3339Nano in UTC: the fraction's trailing zeros dropped."""
    try:
        when = datetime(1970, 1, 1) + timedelta(seconds=t.seconds)
    except OverflowError:  # beyond datetime's years 1-9999
        return t.rfc3339()
    frac = f".{t.nanos:09d}".rstrip("0") if t.nanos else ""
    return when.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + frac + "Z"


def _b64(data):
    return base64.b64encode(data).decode()


def matches(got, exp):
    """Whether a generically decoded value equals its canonical form (README table)."""
    if got is None:
        return exp is None
    if isinstance(got, bool):
        return isinstance(exp, bool) and got == exp
    if isinstance(got, int):
        return isinstance(exp, int) and not isinstance(exp, bool) and got == exp
    if isinstance(got, float):
        return _float_matches(got, exp)
    if isinstance(got, complex):
        return (
            isinstance(exp, list)
            and len(exp) == 2
            and _float_matches(got.real, exp[0])
            and _float_matches(got.imag, exp[1])
        )
    if isinstance(got, str):
        return got == exp
    if isinstance(got, bytes):
        return exp == {"bytes": _b64(got)}
    if isinstance(got, GoTime):
        return exp == {"time": _rfc3339(got)}
    if isinstance(got, GoOpaque):
        return exp == {"opaque": _b64(got.data)}
    if isinstance(got, GoInterface):
        return (
            isinstance(exp, dict)
            and set(exp) == {"type", "value"}
            and exp["type"] == got.name
            and matches(got.value, exp["value"])
        )
    if isinstance(got, (list, tuple)):
        return isinstance(exp, list) and len(got) == len(exp) and all(map(matches, got, exp))
    if isinstance(got, dict) and isinstance(exp, list) and not isinstance(got, FrozenStruct):
        return _map_matches(got, exp)
    if isinstance(got, dict):  # a struct
        return isinstance(exp, dict) and set(got) == set(exp) and all(matches(got[k], exp[k]) for k in got)
    return False


def _map_matches(got, pairs):
    if len(got) != len(pairs):
        return False
    left = list(pairs)
    for k, v in got.items():
        for i, pair in enumerate(left):
            if matches(k, pair[0]) and matches(v, pair[1]):
                del left[i]
                break
        else:
            return False
    return True


def _decode(data):
    started = time.monotonic()
    try:
        values, error = decode_all(data), None
    except GobError as exc:
        values, error = None, exc
    assert time.monotonic() - started < 1.0
    return values, error


@pytest.mark.parametrize("case", _load())
def test_vector(case):
    data = bytes.fromhex(case["gob"])
    clear_cache()
    values, error = _decode(data)  # a sender's first frame
    if case["kind"] == "valid":
        assert error is None, f"valid stream rejected: {error}"
        assert len(values) == len(case["values"])
        for got, exp in zip(values, case["values"], strict=True):
            assert matches(got, exp), f"decoded {got!r}, canonical {exp!r}"
    elif case["structural"]:
        assert error is not None, f"invalid stream accepted: {values!r} (Go: {case['error']})"
        assert error.offset is None or f"at byte {error.offset}" in str(error)


@pytest.mark.parametrize("case", _load())
@pytest.mark.parametrize("target", [None, _StatMessage], ids=["generic", "typed"])
def test_vector_same_outcome_on_every_path(case, target):
    started = time.monotonic()
    assert_paths_agree(bytes.fromhex(case["gob"]), target)
    assert time.monotonic() - started < 5.0
