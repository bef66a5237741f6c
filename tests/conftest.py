"""Fixtures shared by the test modules, and: under CI (``CI=true`` in the environment)
a skipped test is a failure that gives the skip's reason: CI runs every test, and a missing
tool or data set there is a fault to fix, not a pass. Locally a skip stays a skip and says
why (``-ra`` in setup.cfg). Expected failures (xfail) are left as they are."""

import os

import pytest
from protobuf_decoders import compiled

from statserver.aggregation import aggregator
from statserver.server import framing, protocol
from statserver.sinks import summary
from statserver.wire import protostat


def under_ci():
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _fail_skip(report, what):
    if report.skipped and not hasattr(report, "wasxfail") and under_ci():
        longrepr = report.longrepr
        reason = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"{what} skipped under CI=true, where every test must run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result(), "test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result(), "module")


def _install(request, monkeypatch, module, name, pure, compiled_getter):
    """``pure`` or ``compiled_getter()`` (by the fixture's param) as ``module.name``,
    whatever ``STATSERVER_PURE`` chose; skips (fails under CI=true) where the compiled
    one is not built."""
    chosen = pure
    if request.param == "compiled":
        chosen = compiled_getter()
        if chosen is None:
            compiled()  # skips
    monkeypatch.setattr(module, name, chosen)
    return chosen


@pytest.fixture(params=["pure", "compiled"])
def protobuf_decoder(request, monkeypatch):
    """Each protobuf decoder in turn, installed as ``protostat.decode_protobuf`` (so that
    ``decode_frame`` uses it too)."""
    return _install(request, monkeypatch, protostat, "decode_protobuf",
                    protostat.pure_decode_protobuf, protostat.compiled_decode_protobuf)


@pytest.fixture(params=["pure", "compiled"])
def summary_add_stats(request, monkeypatch):
    """Each implementation of the summary's set updates in turn, as ``summary.add_stats``."""
    return _install(request, monkeypatch, summary, "add_stats", summary.pure_add_stats,
                    summary.compiled_add_stats)


@pytest.fixture(params=["pure", "compiled"])
def aggregator_record_many(request, monkeypatch):
    """``Aggregator.record_many`` all in Python, then with its common case compiled."""
    return _install(request, monkeypatch, aggregator, "compiled_record_many", None,
                    aggregator.compiled_aggregate_record_many)


@pytest.fixture(params=["pure", "compiled"])
def split(request, monkeypatch):
    """Each ``split_frames`` in turn, as the one the server's protocol uses."""
    return _install(request, monkeypatch, protocol, "split_frames", framing.pure_split_frames,
                    framing.compiled_split_frames)


class Logged(list):
    """The events logged while a test runs (``twisted.logger`` dicts), in order."""

    def texts(self):
        """Each event's formatted text."""
        from twisted.logger import formatEvent

        return [formatEvent(event) for event in self]

    def containing(self, words):
        """The formatted texts containing ``words``."""
        return [text for text in self.texts() if words in text]

    def events_containing(self, words):
        """The events whose formatted text contains ``words`` (for their fields)."""
        from twisted.logger import formatEvent

        return [event for event in self if words in formatEvent(event)]


@pytest.fixture
def logged():
    """Every event logged while the test runs (``Logged``)."""
    from twisted.logger import globalLogPublisher

    events = Logged()
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest.fixture
def clock():
    """A ``MemoryReactor`` (memoryreactor.py) that txaio's timers (autobahn's pings and
    close handshakes) run on too, for the test's length."""
    import txaio
    from memoryreactor import MemoryReactor

    clock = MemoryReactor()
    txaio.use_twisted()
    saved = txaio.config.loop
    txaio.config.loop = clock
    yield clock
    txaio.config.loop = saved


# How long a finished test's connections and timers get to close on their own: closing a
# connection, stopping a port and autobahn's close handshake finish a few reactor turns
# after the test's last await.
SETTLE_SECONDS = 2.0


def _reactor_state():
    from twisted.internet import reactor

    # the reactor's own: its waker, and its SIGCHLD waker once a process has been spawned
    own = {reactor.waker, *getattr(reactor, "_internalReaders", ())}
    selectables = {s for s in (*reactor.getReaders(), *reactor.getWriters()) if s not in own}
    return selectables, {call for call in reactor.getDelayedCalls() if call.active()}


def _left_behind(before):
    """What the reactor holds now that it did not hold in ``before``: (selectables, calls)."""
    selectables, calls = _reactor_state()
    return selectables - before[0], calls - before[1]


def _describe(selectables, calls):
    from twisted.internet import reactor

    lines = [f"  open: {s!r}" for s in sorted(selectables, key=repr)]
    now = reactor.seconds()
    for call in sorted(calls, key=lambda c: c.getTime()):
        lines.append(f"  timer due in {call.getTime() - now:.2f} s: {call.func!r}{call.args!r}")
        lines.extend(f"    (one of autobahn's batched timers) {func!r}" for func in _batched(call))
    return "\n".join(lines)


def _batched(call):
    """The functions due in ``call`` when it is a txaio batched timer's bucket (autobahn's
    ping, close handshake and open handshake timeouts), else nothing."""
    timer = getattr(call.func, "__self__", None)
    buckets = getattr(timer, "_buckets", None)
    if not isinstance(buckets, dict) or not call.args or call.args[0] not in buckets:
        return []
    funcs = []
    for batched in buckets[call.args[0]][1]:
        cells = getattr(getattr(batched, "_call", None), "__closure__", None) or ()
        funcs.extend(c.cell_contents for c in cells if callable(c.cell_contents))
    return funcs


def _clean_up(selectables, calls):
    """Close and cancel what a test left, so that it cannot disturb the next tests."""
    for call in calls:
        if call.active():
            call.cancel()
    for s in selectables:
        for name in ("abortConnection", "stopListening", "loseConnection"):
            if hasattr(s, name):
                try:
                    getattr(s, name)()
                except Exception:  # best effort: the test has failed already
                    pass
                break


@pytest.fixture(autouse=True)
def clean_reactor():
    """Fails a test that leaves connections, listening ports or pending timers in the global
    reactor (its wakers and what was there before the test are not counted). The reactor gets
    ``SETTLE_SECONDS`` to finish closes the test started. What was left is then closed and
    cancelled, so that the next tests do not inherit it."""
    import pytest_twisted
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.internet.task import deferLater

    before = _reactor_state()
    yield
    if not any(_left_behind(before)):
        return

    async def settle():
        deadline = reactor.seconds() + SETTLE_SECONDS
        while any(left := _left_behind(before)) and reactor.seconds() < deadline:
            await deferLater(reactor, 0.01, lambda: None)
        return left

    selectables, calls = pytest_twisted.blockon(Deferred.fromCoroutine(settle()))
    if selectables or calls:
        left = _describe(selectables, calls)
        _clean_up(selectables, calls)
        pytest.fail(f"the test left the reactor dirty {SETTLE_SECONDS} s after it ended:\n{left}",
                    pytrace=False)
