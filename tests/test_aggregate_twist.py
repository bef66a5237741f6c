"""``twist statserver`` in a subprocess: stats sent over WebSocket appear as gauges on
``/metrics`` and in ``/api/v1/revisions``, and a revision silent for two stable windows
disappears from both."""

import json
import os
import signal
import time

import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twistproc import listening_port, spawn_twist
from wsclient import bounded, connect, http_get, until

from statserver.model import StatMessage
from statserver.wire import encode_protobuf

STABLE_WINDOW = 6  # seconds; the shortest Knative allows


def gauges(text, name):
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


async def scrape(port):
    code, _, body = await http_get(port, b"/metrics")
    assert code == 200
    return body.decode("utf-8")


async def api(port, path=b""):
    code, _, body = await http_get(port, b"/api/v1/revisions" + path)
    return code, json.loads(body)


@pytest_twisted.ensureDeferred
async def test_gauges_and_api_then_eviction():
    twist = spawn_twist("statserver", "--port", "tcp:0:interface=127.0.0.1",
                        "--stable-window", str(STABLE_WINDOW), "--aggregation", "linear",
                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        port = await listening_port(twist)
        client = await connect(port)
        client.send_frame(encode_protobuf([
            StatMessage("ns-t", "rev-t", "activator-0", 3.5, 0.5, 7.0, 2.0),
            StatMessage("ns-t", "rev-t", "activator-1", 1.0, 0.0, 1.0, 0.0),
        ]))
        sent = time.monotonic()
        stable = (("name", "rev-t"), ("namespace", "ns-t"), ("window", "stable"))

        async def on_metrics():
            return gauges(await scrape(port), "statserver_revision_concurrency").get(stable)

        # Within one bucket: (3.5 - 0.5) + 1 over the one bucket written.
        assert await bounded(until(on_metrics, 0.2), 1.0) == 4.0
        text = await scrape(port)
        assert gauges(text, "statserver_revision_rps")[stable] == 6.0
        assert gauges(text, "statserver_revision_pods")[(("name", "rev-t"),
                                                         ("namespace", "ns-t"))] == 2
        code, body = await api(port, b"/ns-t/rev-t")
        assert code == 200
        assert body["concurrency"]["stable"] == 4.0 and body["pods"] == 2
        code, body = await api(port)
        assert body["stable_window_seconds"] == STABLE_WINDOW
        assert body["panic_window_seconds"] == 1  # 10 % of 6 s, at least one bucket
        assert [r["name"] for r in body["revisions"]] == ["rev-t"]

        client.transport.loseConnection()
        await bounded(client.closed)

        # Silent for more than two windows: gone from both.
        async def gone():
            code, _ = await api(port, b"/ns-t/rev-t")
            return code == 404

        await bounded(until(gone, 0.2), 2 * STABLE_WINDOW + 5)
        assert time.monotonic() - sent >= 2 * STABLE_WINDOW - 0.5
        assert stable not in gauges(await scrape(port), "statserver_revision_concurrency")
        code, body = await api(port)
        assert body["revisions"] == []
    finally:
        if twist.ended.called is False:
            twist.process.signalProcess(signal.SIGTERM)
        ended = await bounded(twist.ended, 15)
    assert ended.exitCode == 0
