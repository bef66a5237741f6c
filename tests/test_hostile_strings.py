"""Every consumer of stats takes any string (and any time the model can hold) without
failing, whatever the admission step lets through: strings straight to each one."""

import json

import pytest
import pytest_twisted
from prometheus_client import CollectorRegistry, generate_latest
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from statserver.aggregation.aggregator import Aggregator
from statserver.aggregation.api import ApiResource
from statserver.aggregation.collector import AggregateCollector
from statserver.model import StatMessage
from statserver.sinks.statslog import StatsLog
from statserver.sinks.summary import Summary

S = 1_000_000_000
T0 = 1_700_000_000
HOSTILE = [
    "\udcff\udcfe",  # a gob string of bytes that are not UTF-8
    "\ud800",  # a JSON "\ud800" escape
    "ctl\x00\x07\n\r\"\\",
    "é" * 40,
    "x" * 100_000,
]


def hostile_stats(received_at=T0 * S):
    rotated = zip(HOSTILE, HOSTILE[1:] + HOSTILE[:1], HOSTILE[2:] + HOSTILE[:2], strict=True)
    return [StatMessage(ns, name, pod, 1.0, 0.0, 2.0, 0.0, received_at=received_at)
            for ns, name, pod in rotated]


def fed(**kwargs):
    clock = Clock()
    clock.advance(T0)
    aggregator = Aggregator(clock, **kwargs)
    aggregator.record_many(hostile_stats())
    return aggregator


def test_metrics_exposition_takes_any_string():
    registry = CollectorRegistry()
    registry.register(AggregateCollector(fed()))
    body = generate_latest(registry)  # UnicodeEncodeError before
    body.decode("utf-8")
    assert b'namespace="\\\\udcff\\\\udcfe"' in body  # escaped, then Prometheus-escaped
    assert body.count(b"statserver_revision_pods{") == len(HOSTILE)


def test_metrics_page_takes_any_string():
    parts = []
    for _ in AggregateCollector(fed()).exposition(parts):  # what /metrics renders, sliced
        pass
    body = b"".join(parts)
    body.decode("utf-8")
    assert b'namespace="\\\\udcff\\\\udcfe"' in body
    assert body.count(b"statserver_revision_pods{") == len(HOSTILE)


@pytest_twisted.ensureDeferred
async def test_api_takes_any_string():
    api = ApiResource(fed(), clock=reactor)
    assert api.render(DummyRequest([b"v1", b"revisions"])) == NOT_DONE_YET  # rendered in slices
    body = await api.render_cache.body().addTimeout(10, reactor)
    revisions = json.loads(body)["revisions"]
    assert sorted(r["namespace"] for r in revisions) == sorted(HOSTILE)


@pytest_twisted.ensureDeferred
async def test_stats_log_takes_any_string(tmp_path):
    path = tmp_path / "stats.jsonl"
    log = StatsLog(str(path), reactor=reactor)
    log.start()
    for stat in hostile_stats():
        log.record(stat)
    await log.close().addTimeout(10, reactor)
    assert log.lines_lost == 0
    lines = path.read_bytes().decode("ascii").splitlines()
    assert [json.loads(line)["namespace"] for line in lines] == HOSTILE


def test_summary_takes_any_string():
    summary = Summary(reactor=Clock())
    summary.record_many(hostile_stats())
    assert summary.report()["revisions"] == len(HOSTILE)


def test_max_revisions_warning_takes_any_string(logged):
    aggregator = fed(max_revisions=1)
    [line] = logged.containing("(--max-revisions)")
    line.encode("ascii")  # written as the characters \udcff, never raw bytes
    assert "e.g. '\\ud800'/" in line or "e.g. 'ctl" in line
    assert len(line) < 400
    assert aggregator.refused_revisions == len(HOSTILE) - 1


@pytest.mark.parametrize("seconds", [2**62, -(2**62), 253_402_300_800, -62_135_596_801])
@pytest_twisted.ensureDeferred
async def test_stats_log_and_api_take_a_time_rfc3339_cannot_write(seconds, tmp_path):
    # the admission step keeps such times from consumers; they still must not fail
    stat = StatMessage("ns", "rev", "pod", 1.0, timestamp=seconds * S, received_at=T0 * S)
    log = StatsLog(str(tmp_path / "s.jsonl"), reactor=reactor)
    log.start()
    log.record(stat)
    await log.close().addTimeout(10, reactor)
    assert json.loads((tmp_path / "s.jsonl").read_text())["timestamp"] is None
    aggregator = Aggregator(Clock())
    aggregator.clock.advance(T0)
    aggregator.record(stat)
    body = await ApiResource(aggregator, clock=reactor).render_cache.body().addTimeout(10, reactor)
    assert [r["name"] for r in json.loads(body)["revisions"]] == ["rev"]


def test_dashboard_snapshot_takes_any_string():
    from statserver.dashboard.service import Dashboard
    from statserver.server.service import StatsServer

    aggregator = fed()
    dashboard = Dashboard(StatsServer(None, reactor=aggregator.clock), aggregator,
                          reactor=aggregator.clock)
    event = dashboard.build_now(aggregator.clock.seconds())  # UnicodeEncodeError before
    data = event.decode("utf-8").split("data: ", 1)[1]
    rows = json.loads(data)["revisions"]
    assert sorted(row[0] for row in rows) == sorted(HOSTILE)
