"""The stat a sender reports for one revision, as the server delivers it."""

import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _json_string
from typing import NamedTuple

_NS_PER_S = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def rfc3339_ns(ns):
    """Nanoseconds since the Unix epoch as RFC 3339 in UTC, the way Go's RFC3339Nano
    writes it: trailing zeros of the fraction dropped, no fraction when it is zero."""
    seconds, frac = divmod(ns, _NS_PER_S)
    text = _rfc3339_seconds(seconds)
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


@lru_cache(maxsize=256)  # stats come in bursts from the same few seconds
def _rfc3339_seconds(seconds):
    t = _EPOCH + timedelta(seconds=seconds)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def _json_number(x):
    # JSON has no NaN or infinities; a sender's non-finite float becomes null.
    return repr(float(x)) if math.isfinite(x) else "null"


def _json_time(ns):
    return "null" if ns is None else '"' + rfc3339_ns(ns) + '"'


class StatMessage(NamedTuple):
    """One revision's stat from one pod.

    ``timestamp`` is the sender's own time in nanoseconds since the Unix epoch (UTC), or
    None when its era sends none; ``received_at`` is when the server read the frame, in
    the same unit. ``timestamp_offset`` is the sender's zone offset in seconds east of UTC
    where its era sends one (gob's ``time.Time``), kept so that a stat re-encodes to the
    sender's exact bytes; it is not part of the JSON form. Counts are floats whatever the
    sender's era sent.
    """

    namespace: str
    name: str
    pod_name: str = ""
    average_concurrent_requests: float = 0.0
    average_proxied_concurrent_requests: float = 0.0
    request_count: float = 0.0
    proxied_request_count: float = 0.0
    process_uptime: float = 0.0
    timestamp: int | None = None
    received_at: int | None = None
    timestamp_offset: int | None = None

    @property
    def key(self):
        """``"namespace/name"``, the revision's key as Knative writes it."""
        return f"{self.namespace}/{self.name}"

    def to_dict(self):
        """The JSON-lines form as a dict (times as RFC 3339 strings or None)."""
        d = self._asdict()
        del d["timestamp_offset"]
        d["timestamp"] = None if self.timestamp is None else rfc3339_ns(self.timestamp)
        d["received_at"] = None if self.received_at is None else rfc3339_ns(self.received_at)
        return d

    def to_json(self):
        """One line of JSON (no newline) with every field, times in RFC 3339 UTC; a
        non-finite float (NaN, infinity) is written as null."""
        # Written by hand rather than json.dumps(self.to_dict()): this runs once per stat
        # in the stats log and is twice as fast this way.
        return (
            f'{{"namespace":{_json_string(self.namespace)},"name":{_json_string(self.name)},'
            f'"pod_name":{_json_string(self.pod_name)},'
            f'"average_concurrent_requests":{_json_number(self.average_concurrent_requests)},'
            f'"average_proxied_concurrent_requests":'
            f"{_json_number(self.average_proxied_concurrent_requests)},"
            f'"request_count":{_json_number(self.request_count)},'
            f'"proxied_request_count":{_json_number(self.proxied_request_count)},'
            f'"process_uptime":{_json_number(self.process_uptime)},'
            f'"timestamp":{_json_time(self.timestamp)},"received_at":{_json_time(self.received_at)}}}'
        )
