"""Decode one gob stream on every path of the decoder and say whether they agree.

A plan runs interpreted or compiled (``decoder.EXECUTION``), and a sender's frames meet a
cold cache, then a cache where the plan was interpreted once (the second frame compiles
it), then warm compiled code. Every path must give the same outcome: the same values, or
a ``GobError`` with the same message.
"""

from statserver.gob import GobError, decode_all, decoder
from statserver.gob.decoder import clear_cache

PATHS = ("interpreted", "compiled", "first", "second", "warm")


def outcome(data, target=None, **limits):
    """("ok", repr of the values) or ("error", the GobError's message); repr so that NaNs
    compare equal."""
    try:
        return "ok", repr(decode_all(data, target, **limits))
    except GobError as exc:
        return "error", str(exc)


def _with(execution, fn):
    saved = decoder.EXECUTION
    decoder.EXECUTION = execution
    try:
        return fn()
    finally:
        decoder.EXECUTION = saved


def outcomes(data, target=None, **limits):
    """The outcome of ``decode_all(data, target)`` on each of ``PATHS``."""
    got = {}
    for execution in ("interpreted", "compiled"):
        clear_cache()
        got[execution] = _with(execution, lambda: outcome(data, target, **limits))
    clear_cache()
    for path in ("first", "second", "warm"):
        got[path] = _with("auto", lambda: outcome(data, target, **limits))
    return got


def assert_paths_agree(data, target=None, **limits):
    """Every path's outcome is the interpreter's; return it."""
    got = outcomes(data, target, **limits)
    expected = got["interpreted"]
    for path, result in got.items():
        assert result == expected, f"{path} disagrees with the interpreter on {_short(data)}:\n{result}\n{expected}"
    return expected


def _short(data):
    text = data.hex()
    return text if len(text) <= 200 else f"{text[:200]}... ({len(data)} bytes)"
