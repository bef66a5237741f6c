"""Fixtures shared by the test modules, and: under CI (``CI=true`` in the environment)
a skipped test is a failure that gives the skip's reason: CI runs every test, and a missing
tool or data set there is a fault to fix, not a pass. Locally a skip stays a skip and says
why (``-ra`` in setup.cfg). Expected failures (xfail) are left as they are."""

import os

import pytest
from protobuf_decoders import compiled

from statserver.aggregation import aggregator
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


@pytest.fixture(params=["pure", "compiled"])
def protobuf_decoder(request, monkeypatch):
    """Each protobuf decoder in turn, installed as ``protostat.decode_protobuf`` (so that
    ``decode_frame`` uses it too) whatever ``STATSERVER_PURE`` chose."""
    decode = protostat.pure_decode_protobuf if request.param == "pure" else compiled()
    monkeypatch.setattr(protostat, "decode_protobuf", decode)
    return decode


@pytest.fixture(params=["pure", "compiled"])
def summary_add_stats(request, monkeypatch):
    """Each implementation of the summary's set updates in turn, as ``summary.add_stats``."""
    if request.param == "pure":
        add = summary.pure_add_stats
    else:
        add = summary.compiled_add_stats()
        if add is None:
            compiled()  # skips (fails under CI=true)
    monkeypatch.setattr(summary, "add_stats", add)
    return add


@pytest.fixture(params=["pure", "compiled"])
def aggregator_record_many(request, monkeypatch):
    """``Aggregator.record_many`` all in Python, then with its common case compiled."""
    compiled_record_many = None
    if request.param == "compiled":
        compiled_record_many = aggregator.compiled_aggregate_record_many()
        if compiled_record_many is None:
            compiled()  # skips (fails under CI=true)
    monkeypatch.setattr(aggregator, "compiled_record_many", compiled_record_many)
    return compiled_record_many


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
