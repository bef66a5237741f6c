"""Knative's ``StatMessage`` as a JSON text frame (v0.16–v0.19 senders), both ways."""

import json
import math

from statserver.constants import JSON, NS_PER_S
from statserver.model import StatMessage
from statserver.wire.errors import FrameError

_JSON_STAT_FIELDS = (
    "pod_name",
    "average_concurrent_requests",
    "average_proxied_concurrent_requests",
    "request_count",
    "proxied_request_count",
    "process_uptime",
)


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _field(obj, name):
    """``obj[name]`` matched the way Go's encoding/json does: exact, else case-insensitive."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for key, value in obj.items():
        if key.casefold() == folded:
            return value
    return None


def _json_number(value, where):
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FrameError(JSON, f"{where} is not a number")
    try:
        value = float(value)
    except OverflowError:  # an integer of more than 308 digits
        raise FrameError(JSON, f"{where} is out of range") from None
    if not math.isfinite(value):
        raise FrameError(JSON, f"{where} is out of range")
    return value


def _json_string(value, where):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FrameError(JSON, f"{where} is not a string")
    return value


def decode_json(payload, received_at=None):
    """One ``{"Key": {"Namespace", "Name"}, "Stat": {...}}`` text frame."""
    try:
        if isinstance(payload, (bytes, bytearray, memoryview)):
            payload = bytes(payload).decode("utf-8")
        doc = json.loads(payload, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FrameError(JSON, f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise FrameError(JSON, "not a JSON object")
    key, stat = _field(doc, "Key"), _field(doc, "Stat")
    if not isinstance(key, dict):
        raise FrameError(JSON, "no Key object")
    if not isinstance(stat, dict):
        raise FrameError(JSON, "no Stat object")
    values = [_json_string(_field(stat, "pod_name"), "Stat.pod_name")]
    values += [_json_number(_field(stat, f), f"Stat.{f}") for f in _JSON_STAT_FIELDS[1:]]
    timestamp = _field(stat, "timestamp")
    if timestamp is not None:
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise FrameError(JSON, "Stat.timestamp is not an integer")
        if not -(2**63) <= timestamp < 2**63:
            raise FrameError(JSON, "Stat.timestamp is out of range")
        timestamp = timestamp * NS_PER_S if timestamp else None
    return StatMessage(
        _json_string(_field(key, "Namespace"), "Key.Namespace"),
        _json_string(_field(key, "Name"), "Key.Name"),
        *values,
        timestamp=timestamp,
        received_at=received_at,
    )


def encode_json(message):
    """A ``StatMessage`` as the text frame a v0.16–v0.19 sender writes (zero fields left
    out; ``timestamp`` as whole Unix seconds, v0.19's form, when the stat has one)."""
    stat = {}
    for name in _JSON_STAT_FIELDS:
        value = getattr(message, name)
        if value:
            stat[name] = value
    if message.timestamp is not None and message.timestamp // NS_PER_S:
        stat["timestamp"] = message.timestamp // NS_PER_S
    doc = {"Key": {"Namespace": message.namespace, "Name": message.name}, "Stat": stat}
    return json.dumps(doc, separators=(",", ":"))
