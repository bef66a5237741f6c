"""At most so many I/O events in one reactor turn.

Twisted's epoll reactor asks the kernel for every ready event at once and handles them all
before it runs a timer: 3,000 WebSockets closing together were one 200 ms turn, in which no
probe, scrape or ping was answered (benchmarks/README.md, the connect storm). Capping the
events of a turn spreads such a burst over several turns with the timers run between
them. epoll is level-triggered, so the events left over are reported again on the next
turn, the ones not served yet first: nothing is lost or starved.

Only Twisted's ``EPollReactor`` (the default on Linux) is capped, by wrapping its poller
object; other reactors are left as they are.
"""

EVENTS_PER_TURN = 100  # about 7 ms of closes or handshakes on the benchmark machine


class _CappedPoller:
    """An ``select.epoll`` whose ``poll`` returns at most ``limit`` events."""

    def __init__(self, poller, limit):
        self.poller = poller
        self.limit = limit

    def poll(self, timeout=-1, maxevents=-1):
        if maxevents < 0 or maxevents > self.limit:
            maxevents = self.limit
        return self.poller.poll(timeout, maxevents)

    def __getattr__(self, name):  # register, modify, unregister, close, fileno
        return getattr(self.poller, name)


def limit_events_per_turn(reactor, limit=EVENTS_PER_TURN):
    """Cap the I/O events ``reactor`` handles in one turn at ``limit``. Returns a callable
    that undoes it, or None when ``reactor`` is not an epoll reactor."""
    try:
        from twisted.internet.epollreactor import EPollReactor
    except ImportError:  # not Linux
        return None
    if not isinstance(reactor, EPollReactor) or not hasattr(reactor, "_poller"):
        return None
    original = reactor._poller
    if isinstance(original, _CappedPoller):
        original.limit = limit
        return lambda: None
    capped = reactor._poller = _CappedPoller(original, limit)

    def undo():
        if reactor._poller is capped:  # (not if something replaced it since)
            reactor._poller = original

    return undo
