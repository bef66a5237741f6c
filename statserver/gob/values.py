"""Python values for the Go values that have no plain Python counterpart."""

from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class GoTime(NamedTuple):
    """A Go ``time.Time``: an exact instant with nanoseconds and the sender's zone offset.

    ``seconds`` and ``nanos`` are Unix seconds and the nanoseconds within that second;
    ``offset`` is the zone's offset east of UTC in seconds, or None for UTC (Go's
    ``-1`` offset on the wire). The zero value is Go's zero time, 0001-01-01 UTC.
    """

    seconds: int = -62135596800
    nanos: int = 0
    offset: int | None = None

    @classmethod
    def from_unix_nano(cls, ns, offset=None):
        seconds, nanos = divmod(ns, _NS)
        return cls(seconds, nanos, offset)

    @classmethod
    def from_datetime(cls, dt):
        """From an aware (or naive UTC) datetime; microsecond precision, as datetime has."""
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        off = dt.utcoffset()
        delta = dt - _EPOCH
        ns = (delta.days * 86400 + delta.seconds) * _NS + delta.microseconds * 1000
        return cls.from_unix_nano(ns, None if off is None else int(off.total_seconds()))

    @property
    def unix_nano(self):
        """Nanoseconds since the Unix epoch (an exact int)."""
        return self.seconds * _NS + self.nanos

    def is_zero(self):
        return self.seconds == -62135596800 and self.nanos == 0

    def to_datetime(self):
        """An aware datetime in the sender's zone (nanoseconds truncated to microseconds)."""
        tz = timezone.utc if self.offset is None else timezone(timedelta(seconds=self.offset))
        return (_EPOCH + timedelta(seconds=self.seconds, microseconds=self.nanos // 1000)).astimezone(tz)

    def rfc3339(self):
        """RFC 3339 in UTC as Go's RFC3339Nano writes it (fraction's trailing zeros
        dropped), for any year Go can hold (beyond 0001-9999 too, as Go prints them)."""
        days, secs = divmod(self.seconds, 86400)
        year, month, day = _civil_from_days(days)
        ymd = f"-{-year:04d}" if year < 0 else f"{year:04d}"
        text = f"{ymd}-{month:02d}-{day:02d}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        if self.nanos:
            text += "." + f"{self.nanos:09d}".rstrip("0")
        return text + "Z"


def _civil_from_days(days):
    """(year, month, day) of the proleptic Gregorian calendar, ``days`` after 1970-01-01
    (Howard Hinnant's algorithm; exact for any int)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


class GoInterface(NamedTuple):
    """A non-nil Go interface value: the concrete type's registered name and its value.
    (A nil interface decodes to None.)"""

    name: str
    value: Any


class GoOpaque(NamedTuple):
    """The bytes a GobEncoder, BinaryMarshaler or TextMarshaler sent, with its type name
    (``kind`` is ``"gob"``, ``"binary"`` or ``"text"``)."""

    type_name: str
    data: bytes
    kind: str = "gob"


class FrozenStruct(dict):
    """A struct (or map) decoded as a map key: a read-only, hashable dict."""

    __slots__ = ()

    def __hash__(self):
        return hash(frozenset(self.items()))  # equal dicts hash alike whatever their order

    def _read_only(self, *args, **kwargs):
        raise TypeError("a FrozenStruct map key is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only
