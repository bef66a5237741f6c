"""Which decoded stats the server hands on: one rule for every wire format.

A stat is rejected, alone (the rest of its frame goes on), when its namespace or name is
not a plausible Kubernetes name: empty, longer than a DNS label (63 characters), not
UTF-8 or not printable; or when its pod name is longer than a DNS subdomain (253) or not
UTF-8 or not printable (an empty pod name is kept: it only labels the stat). A sender's
timestamp that RFC 3339 cannot write (outside years 1-9999) is removed from its stat,
which is then timed by its receive time like the stats of eras that send none.

"Not UTF-8" is a lone surrogate in the ``str``: what a gob string of other bytes
decodes to (``surrogateescape``) and what a JSON ``"\\ud800"`` escape gives. "Printable"
is ``str.isprintable()``: no control, format, private-use or unassigned code point, no
separator but the ASCII space. Kubernetes' own names are stricter still (lowercase
letters, digits, ``-`` and ``.``); the server does not check that syntax, only what could
hurt its outputs (size, encoding, control characters). See ``docs/server.md``.
"""

from operator import itemgetter

from prometheus_client import Counter
from twisted.logger import Logger

from statserver.constants import NS_PER_S
from statserver.model import RFC3339_MAX_NS, RFC3339_MIN_NS
from statserver.speedups import choose, compiled
from statserver.text import quote

#: A namespace or a revision name is a DNS label: at most this many characters.
NAME_MAX = 63
#: A pod name is a DNS subdomain: at most this many characters.
POD_NAME_MAX = 253
TIME_MIN = RFC3339_MIN_NS
TIME_MAX = RFC3339_MAX_NS

EMPTY = "empty"
TOO_LONG = "too_long"
NOT_UTF8 = "not_utf8"
UNPRINTABLE = "unprintable"
#: The ``reason`` labels of ``statserver_stats_rejected_total``.
REASONS = (EMPTY, TOO_LONG, NOT_UTF8, UNPRINTABLE)

# Names already found plausible, so that the stats of known revisions are admitted by
# set lookups in C; emptied when full (the next stats are checked again).
_KNOWN_LIMIT = 32768

_namespace = itemgetter(0)
_name = itemgetter(1)
_pod_name = itemgetter(2)
_timestamp = itemgetter(8)


def name_problem(value, limit, *, empty_ok=False):
    """The reason (one of :data:`REASONS`) ``value`` is not a plausible name of at most
    ``limit`` characters, or None when it is."""
    if not value:
        return None if empty_ok else EMPTY
    if len(value) > limit:
        return TOO_LONG
    if value.isprintable():
        return None
    if any("\ud800" <= c <= "\udfff" for c in value):
        return NOT_UTF8
    return UNPRINTABLE


_WHY = {EMPTY: "empty", TOO_LONG: "too long", NOT_UTF8: "not UTF-8", UNPRINTABLE: "not printable"}
_LIMITS = {"namespace": NAME_MAX, "name": NAME_MAX, "pod name": POD_NAME_MAX}


def pure_admit_all(stats, names, pods, tmin, tmax):
    """Whether every stat in ``stats`` passes unchecked: its namespace and name in
    ``names``, its pod name in ``pods``, its timestamp None or within [tmin, tmax]."""
    return (
        names.issuperset(map(_namespace, stats))
        and names.issuperset(map(_name, stats))
        and pods.issuperset(map(_pod_name, stats))
        and _times_writable(stats, tmin, tmax)
    )


def compiled_admit_all():
    """``statserver._speedups.admit_all``, or None where it is not built."""
    return compiled("admit_all")


#: ``pure_admit_all``, compiled unless ``STATSERVER_PURE=1`` (or not built).
admit_all = choose(compiled_admit_all, pure_admit_all)


def _times_writable(stats, tmin, tmax):
    # one C-level pass: a frame's stats mostly share a time, and sorting sorted or equal
    # values is one comparison each (min() and max() would take two passes)
    try:
        times = sorted(map(_timestamp, stats))
        return not times or (tmin <= times[0] and times[-1] <= tmax)
    except TypeError:  # None (no time) among them
        times = sorted(filter(None, map(_timestamp, stats)))
        return not times or (tmin <= times[0] and times[-1] <= tmax)


class Admission:
    """The admission step of a ``StatsServer``: ``admit(stats, peer)`` returns the stats
    that may go on the queue, in order. Rejected stats are counted in
    ``statserver_stats_rejected_total{reason}`` and dropped timestamps in
    ``statserver_stat_timestamps_dropped_total`` (both in ``registry``), and each is
    logged while ``rate_limit`` (the server's ``_RateLimit``) allows it."""

    _log = Logger()

    def __init__(self, registry, rate_limit):
        self.rejected = Counter(
            "statserver_stats_rejected",
            "Stats rejected because their namespace, name or pod name is not a plausible "
            "Kubernetes name, by reason",
            ["reason"],
            registry=registry,
        )
        self._rejected = {reason: self.rejected.labels(reason) for reason in REASONS}
        self.timestamps_dropped = Counter(
            "statserver_stat_timestamps_dropped",
            "Sender timestamps outside years 1-9999 removed from their stats",
            registry=registry,
        )
        self._rate_limit = rate_limit
        self._names = set()  # namespaces and names found plausible
        self._pods = set()  # pod names found plausible

    def admit(self, stats, peer):
        """``stats`` (a list of ``StatMessage``) without those rejected; the same list
        when all pass, as the stats of known revisions do."""
        names = self._names
        if len(stats) == 1:  # gob and JSON: one stat a frame, checked without the passes
            stat = stats[0]
            timestamp = stat[8]
            if (stat[0] in names and stat[1] in names and stat[2] in self._pods
                    and (timestamp is None or TIME_MIN <= timestamp <= TIME_MAX)):
                return stats
            return self._admit_each(stats, peer)
        if admit_all(stats, names, self._pods, TIME_MIN, TIME_MAX):
            return stats
        return self._admit_each(stats, peer)

    def _admit_each(self, stats, peer):
        names, pods = self._names, self._pods
        if len(names) > _KNOWN_LIMIT:
            names.clear()
        if len(pods) > _KNOWN_LIMIT:
            pods.clear()
        admitted = []
        rejected = dict.fromkeys(REASONS, 0)
        dropped = 0
        for stat in stats:
            problem = None
            for field, value, known in (("namespace", stat[0], names), ("name", stat[1], names),
                                        ("pod name", stat[2], pods)):
                if value in known:
                    continue
                problem = name_problem(value, _LIMITS[field], empty_ok=known is pods)
                if problem is not None:
                    break
                known.add(value)
            if problem is not None:
                rejected[problem] += 1
                self._tell(
                    "Rejected a stat from {peer}: its {field} is {why}: {value}{held}",
                    peer=peer, field=field, why=_WHY[problem], value=quote(value))
                continue
            timestamp = stat[8]
            if timestamp is not None and not TIME_MIN <= timestamp <= TIME_MAX:
                dropped += 1
                self._tell(
                    "Removed the timestamp of a stat from {peer} for {namespace}/{name}: "
                    "{seconds} s since 1970 is outside the years 1-9999{held}",
                    peer=peer, namespace=stat[0], name=stat[1],
                    seconds=timestamp // NS_PER_S)
                stat = stat._replace(timestamp=None, timestamp_offset=None)
            admitted.append(stat)
        for reason, count in rejected.items():
            if count:
                self._rejected[reason].inc(count)
        if dropped:
            self.timestamps_dropped.inc(dropped)
        return admitted

    def _tell(self, format, **fields):
        limit = self._rate_limit
        if limit.allow():
            held, limit.suppressed = limit.suppressed, 0
            fields["held"] = f" ({held} more not logged)" if held else ""
            self._log.warn(format, **fields)
