"""Rate limits for the log lines a peer can cause: at most a few per period, the rest
counted and mentioned in the next line that is logged."""

import time


class RateLimit:
    """At most ``burst`` log lines per ``period`` seconds; counts what it held back."""

    def __init__(self, clock, burst=10, period=10.0):
        self._clock = clock
        self._burst = burst
        self._period = period
        self._window = None
        self._used = 0
        self.suppressed = 0

    def allow(self):
        now = self._clock.seconds()
        if self._window is None or now - self._window >= self._period:
            self._window, self._used = now, 0
        if self._used < self._burst:
            self._used += 1
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self):
        """The lines held back since the last call (and reset the count)."""
        held, self.suppressed = self.suppressed, 0
        return held


class _MonotonicClock:
    @staticmethod
    def seconds():
        return time.monotonic()


class LimitedLog:
    """Wraps autobahn's (txaio) logger of a protocol class so that every line at info
    level or above is rate-limited per message: autobahn logs a line for many things a
    peer does (a pong nobody asked for, a failed handshake, a protocol violation), one
    per event. Debug and trace lines pass through (they are off unless asked for).

    The limit is per message format and process-wide (all connections share it):
    ``burst`` lines per ``period`` seconds; the first line after a held-back run says
    how many were not logged.
    """

    def __init__(self, log, *, burst=5, period=60.0, clock=None):
        self._log = log
        self._burst = burst
        self._period = period
        self._clock = clock or _MonotonicClock()
        self._limits = {}  # (level, format) -> RateLimit

    def _limit(self, level, fmt):
        key = (level, str(fmt))
        limit = self._limits.get(key)
        if limit is None:
            if len(self._limits) > 1000:  # formats built per event: one shared limit
                key = (level, None)
                limit = self._limits.get(key)
            if limit is None:
                limit = self._limits[key] = RateLimit(self._clock, self._burst, self._period)
        return limit

    def _limited(self, level, fmt, **kw):
        limit = self._limit(level, fmt)
        if not limit.allow():
            return
        held = limit.take_suppressed()
        if held:
            fmt = f"{fmt} ({held} more such lines not logged)"
        getattr(self._log, level)(fmt, **kw)

    def info(self, fmt, **kw):
        self._limited("info", fmt, **kw)

    def warn(self, fmt, **kw):
        self._limited("warn", fmt, **kw)

    def error(self, fmt, **kw):
        self._limited("error", fmt, **kw)

    def critical(self, fmt, **kw):
        self._limited("critical", fmt, **kw)

    def failure(self, fmt=None, *args, **kw):
        if self._limit("failure", fmt).allow():
            self._log.failure(fmt, *args, **kw)

    def __getattr__(self, name):  # debug, trace and anything else of txaio's logger
        return getattr(self._log, name)
