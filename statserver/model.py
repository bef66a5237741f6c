"""The stat a sender reports for one revision, as the server delivers it."""

import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _json_string
from typing import NamedTuple

from statserver.constants import NS_PER_S

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


#: The earliest and latest times RFC 3339 can write (0001-01-01T00:00:00Z and
#: 9999-12-31T23:59:59.999999999Z), in nanoseconds since the Unix epoch.
RFC3339_MIN_NS = -62_135_596_800 * NS_PER_S
RFC3339_MAX_NS = 253_402_300_800 * NS_PER_S - 1


def rfc3339_ns(ns):
    """Nanoseconds since the Unix epoch as RFC 3339 in UTC, the way Go's RFC3339Nano
    writes it: trailing zeros of the fraction dropped, no fraction when it is zero.
    ``ValueError`` outside years 1-9999 (:data:`RFC3339_MIN_NS`, :data:`RFC3339_MAX_NS`)."""
    if not RFC3339_MIN_NS <= ns <= RFC3339_MAX_NS:
        raise ValueError(f"{ns} ns since 1970 is outside the years RFC 3339 can write")
    seconds, frac = divmod(ns, NS_PER_S)
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


def rfc3339_or_none(ns):
    """``rfc3339_ns(ns)``, or None when ``ns`` is None or outside years 1-9999 (the
    server never hands such a time on; this keeps every output writable anyway)."""
    if ns is None or not RFC3339_MIN_NS <= ns <= RFC3339_MAX_NS:
        return None
    return rfc3339_ns(ns)


def _json_time(ns):
    text = rfc3339_or_none(ns)
    return "null" if text is None else '"' + text + '"'


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
        """The JSON-lines form as a dict (times as RFC 3339 strings, or None when there is
        none or it is outside years 1-9999)."""
        d = self._asdict()
        del d["timestamp_offset"]
        d["timestamp"] = rfc3339_or_none(self.timestamp)
        d["received_at"] = rfc3339_or_none(self.received_at)
        return d

    def to_json(self):
        """One line of JSON (no newline) with every field, times in RFC 3339 UTC; a
        non-finite float (NaN, infinity) and a time outside years 1-9999 are written as
        null. ASCII only: any other character, a lone surrogate too, is escaped."""
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
