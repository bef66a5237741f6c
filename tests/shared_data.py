"""The shared reference data: Knative's frames (``$STAT_FRAMES``) and Go's gob vectors
(``$GOB_VECTORS``), both defaulting to ``../shared/...`` next to the repository.

A directory named by its variable must exist: a test that needs it fails otherwise (a CI
misconfiguration must not pass silently). A missing default directory skips the test.
"""

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from statserver.model import StatMessage

ROOT = Path(__file__).resolve().parent.parent

# The stat-frames files and the wire format of each era's frames.
ERAS = {
    "v02.jsonl": "gob",
    "v06.jsonl": "gob",
    "v07.jsonl": "gob",
    "v08.jsonl": "gob",
    "v10.jsonl": "gob",
    "v12.jsonl": "gob",
    "json.jsonl": "json",
    "proto.jsonl": "protobuf",
    "proto-ts.jsonl": "protobuf",
}
GOB_ERAS = ("v02", "v06", "v07", "v08", "v10", "v12")


def _data_dir(variable, name):
    value = os.environ.get(variable)
    if value is not None:
        path = Path(value)
        if not path.is_dir():
            pytest.fail(f"${variable} is {value!r}, which is not a directory", pytrace=False)
        return path
    path = ROOT.parent / "shared" / name
    if not path.is_dir():
        pytest.skip(f"no {name} at {path} (set ${variable})")
    return path


def stat_frames_dir():
    """``$STAT_FRAMES`` (default ``../shared/stat-frames``)."""
    return _data_dir("STAT_FRAMES", "stat-frames")


def gob_vectors_dir():
    """``$GOB_VECTORS`` (default ``../shared/gob-vectors``)."""
    return _data_dir("GOB_VECTORS", "gob-vectors")


def read_jsonl(path):
    """The JSON values of a ``.jsonl`` file's non-blank lines."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_frames(name):
    """The frames of one ``$STAT_FRAMES`` file as dicts (``payload`` bytes added)."""
    frames = read_jsonl(stat_frames_dir() / name)
    for frame in frames:
        frame["payload"] = bytes.fromhex(frame["frame"])
    return frames


def rfc3339_to_ns(text):
    """'2019-03-14T14:09:27.770464932Z' (UTC, up to 9 fractional digits) -> int ns since
    the epoch."""
    assert text.endswith("Z"), text
    whole, _, frac = text[:-1].partition(".")
    seconds = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 1_000_000_000 + int(frac.ljust(9, "0"))


def readme_stat(d, **fields):
    """The ``StatMessage`` of a stat as the stat-frames README writes it, ``fields`` added."""
    ts = d.get("timestamp")
    return StatMessage(
        namespace=d["namespace"],
        name=d["name"],
        pod_name=d["pod_name"],
        average_concurrent_requests=float(d["average_concurrent_requests"]),
        average_proxied_concurrent_requests=float(d["average_proxied_concurrent_requests"]),
        request_count=float(d["request_count"]),
        proxied_request_count=float(d["proxied_request_count"]),
        process_uptime=float(d["process_uptime"]),
        timestamp=None if ts is None else rfc3339_to_ns(ts),
        **fields,
    )


def gob_vector_files():
    """The ``.jsonl`` files of ``$GOB_VECTORS``, sorted."""
    return sorted(gob_vectors_dir().glob("*.jsonl"))


def data_params(make, nargs=1):
    """``make()``'s ``pytest.param`` list (of ``nargs`` values each), built while collecting;
    when the data directory is missing, one param that skips with the reason (a variable
    naming a missing directory fails the collection)."""
    try:
        return list(make())
    except pytest.skip.Exception as skipped:
        return [pytest.param(*[None] * nargs, marks=pytest.mark.skip(reason=skipped.msg))]
