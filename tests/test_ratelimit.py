"""``statserver.ratelimit.LimitedLog``: the lines a peer can cause, a few per period per
message, the count of those held back said in the next line logged."""

from twisted.internet.task import Clock

from statserver.ratelimit import LimitedLog


class _Recorder:
    """Stands for autobahn's txaio logger: records (level, format, keywords)."""

    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda fmt=None, *args, **kw: self.lines.append((level, fmt, kw))


def test_every_level_is_limited_and_the_held_back_count_is_said_next_period():
    clock = Clock()
    inner = _Recorder()
    log = LimitedLog(inner, burst=2, period=60.0, clock=clock)
    for level in ("info", "warn", "error", "critical"):
        for _ in range(5):
            getattr(log, level)("peer {peer} sent junk", peer="1.2.3.4")
    for _ in range(3):
        log.failure("while handling {peer}", peer="1.2.3.4")
    assert [level for level, _, _ in inner.lines] == [
        "info", "info", "warn", "warn", "error", "error", "critical", "critical",
        "failure", "failure",
    ]  # fmt: skip
    clock.advance(60)
    log.warn("peer {peer} sent junk", peer="5.6.7.8")
    assert inner.lines[-1] == (
        "warn", "peer {peer} sent junk (3 more such lines not logged)", {"peer": "5.6.7.8"})


def test_formats_built_per_event_share_one_limit_past_a_thousand():
    inner = _Recorder()
    log = LimitedLog(inner, burst=1, period=60.0, clock=Clock())
    for n in range(1001):
        log.info(f"distinct line {n}")
    assert len(inner.lines) == 1001  # each format its own limit so far
    for n in range(1001, 1100):
        log.info(f"distinct line {n}")
    assert len(inner.lines) == 1002  # then one shared limit for the rest


def test_debug_and_trace_pass_through_unlimited():
    inner = _Recorder()
    log = LimitedLog(inner, burst=1, period=60.0, clock=Clock())
    for _ in range(10):
        log.debug("frame {n}", n=1)
        log.trace("frame {n}", n=1)
    assert len(inner.lines) == 20
