"""The reference data made by Go (``peers/gendata``, contract in ``tests/data/README.md``):
Knative's frames (``$STAT_FRAMES``, default ``tests/data/stat-frames``) and gob vectors
(``$GOB_VECTORS``, default ``tests/data/gob-vectors``). The variables run the same tests on
another data set of the same format.

A directory named by its variable must exist: a test that needs it fails otherwise (a CI
misconfiguration must not pass silently).
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


DATA = ROOT / "tests" / "data"


def _data_dir(variable, name):
    value = os.environ.get(variable)
    path = DATA / name if value is None else Path(value)
    if not path.is_dir():
        pytest.fail(f"${variable} is {value!r}, which is not a directory" if value is not None
                    else f"the repository's {path} is missing", pytrace=False)
    return path


def stat_frames_dir():
    """``$STAT_FRAMES`` (default ``tests/data/stat-frames``)."""
    return _data_dir("STAT_FRAMES", "stat-frames")


def gob_vectors_dir():
    """``$GOB_VECTORS`` (default ``tests/data/gob-vectors``)."""
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
