"""Times that are not time: a sender's timestamp RFC 3339 cannot write never reaches a
consumer, and one far ahead of the receive time does not hold a revision's averages."""

import json
import time

import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from wsclient import bounded, connect, http_get, port_of, start_server, until

from statserver.model import StatMessage
from statserver.sinks.consumer import StatsConsumer
from statserver.sinks.statslog import StatsLog
from statserver.tap import _aggregator
from statserver.wire import encode_protobuf
from statserver.wire.gobstat import encode_stat_frame

S = 1_000_000_000


def sample(body, name, **labels):
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {name}{labels}")


async def served(tmp_path, **options):
    server = await start_server()
    aggregator = _aggregator(options, server, reactor)
    log = StatsLog(str(tmp_path / "stats.jsonl"), reactor=reactor)
    consumer = StatsConsumer(server.stats, [log, aggregator], clock=reactor)
    consumer.startService()
    return server, consumer, log


async def stop(server, consumer):
    await bounded(server.stopService())
    await bounded(consumer.stopService())


@pytest_twisted.ensureDeferred
async def test_a_stat_stamped_2_to_the_62_seconds_is_served_and_logged(tmp_path):
    server, consumer, log = await served(tmp_path)
    try:
        client = await connect(port_of(server))
        far = 2**62  # seconds: year 146 billion
        client.send_frame(encode_protobuf([StatMessage("ns", "proto", "p", 1.0,
                                                       timestamp=far * S)]))
        client.send_frame(
            b'{"Key":{"Namespace":"ns","Name":"json"},"Stat":{"timestamp":%d}}' % far,
            binary=False)
        client.send_frame(encode_stat_frame(StatMessage("ns", "gob", "p", 1.0,
                                                        timestamp=far * S)))
        await bounded(until(lambda: consumer.recorded == 3))
        code, _, body = await http_get(port_of(server), b"/api/v1/revisions")
        assert code == 200  # 500 before: OverflowError in timedelta
        revisions = json.loads(body)["revisions"]
        assert [r["name"] for r in revisions] == ["gob", "json", "proto"]
        assert all(r["last_stat_time"].startswith(time.strftime("%Y-")) for r in revisions)
        log.flush()  # handed to the writer thread: wait until it has written them
        await bounded(until(lambda: log.lines_written == 3))
        lines = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
        assert [(d["name"], d["timestamp"]) for d in lines] == [
            ("proto", None), ("json", None), ("gob", None)]
        assert all(d["received_at"] is not None for d in lines)
        code, _, body = await http_get(port_of(server), b"/metrics")
        assert sample(body, "statserver_stat_timestamps_dropped_total") == 3
        client.sendClose()
        await bounded(client.closed)
    finally:
        await stop(server, consumer)


@pytest_twisted.ensureDeferred
async def test_a_stat_stamped_in_2100_is_averaged_at_its_receive_time(tmp_path):
    server, consumer, log = await served(tmp_path)
    try:
        client = await connect(port_of(server))
        year_2100 = 4_102_444_800 * S
        client.send_frame(encode_protobuf([StatMessage("ns", "rev", "p", 1000.0,
                                                       timestamp=year_2100)]))
        await bounded(until(lambda: consumer.recorded == 1))
        code, _, body = await http_get(port_of(server), b"/api/v1/revisions/ns/rev")
        assert code == 200
        assert json.loads(body)["last_stat_time"].startswith(time.strftime("%Y-"))
        code, _, body = await http_get(port_of(server), b"/metrics")
        assert sample(body, "statserver_aggregation_skewed_stats_total", direction="ahead") == 1
        assert sample(body, "statserver_aggregation_skewed_stats_total", direction="behind") == 0
        log.flush()
        await bounded(until(lambda: log.lines_written == 1))
        [line] = (tmp_path / "stats.jsonl").read_text().splitlines()
        assert json.loads(line)["timestamp"] == "2100-01-01T00:00:00Z"  # logged as sent
        client.sendClose()
        await bounded(client.closed)
    finally:
        await stop(server, consumer)
