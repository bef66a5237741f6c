"""``/api/v1/revisions`` over real HTTP on 127.0.0.1, mounted in a StatsServer's tree."""

import json

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from wsclient import bounded, connect, http_get, port_of, start_server, take

from statserver.aggregation.aggregator import Aggregator
from statserver.aggregation.api import ApiResource, revision_json
from statserver.model import StatMessage
from statserver.wire import encode_protobuf

S = 1_000_000_000
T0 = 1_552_572_567  # 2019-03-14T14:09:27Z


async def serving(aggregator):
    server = await start_server()
    server.root.putChild(b"api", ApiResource(aggregator))
    return server


async def get_json(server, path):
    code, headers, body = await http_get(port_of(server), path)
    assert headers.getRawHeaders(b"content-type") == [b"application/json"]
    return code, json.loads(body)


def fed_aggregator():
    clock = Clock()
    clock.advance(T0 + 2.5)
    aggregator = Aggregator(clock)
    for second, pod, concurrency, requests in [(0, "a", 1.0, 10.0), (1, "b", 3.0, 20.0),
                                               (2, "a", 2.0, 30.0)]:
        at = (T0 + second) * S
        aggregator.record(StatMessage("ns", "rev", pod, concurrency, 0.5, requests, 4.0,
                                      timestamp=at, received_at=at + S // 2))
    aggregator.record(StatMessage("other", "r2", "a", 4.0, received_at=(T0 + 2) * S))
    return aggregator


@pytest_twisted.ensureDeferred
async def test_all_revisions():
    server = await serving(fed_aggregator())
    try:
        code, body = await get_json(server, b"/api/v1/revisions")
        assert code == 200
        assert body == {
            "stable_window_seconds": 60,
            "panic_window_seconds": 6,
            "aggregation": "linear",
            "revisions": [
                {"namespace": "ns", "name": "rev",
                 # (0.5 + 2.5 + 1.5) / 3 buckets; (6 + 16 + 26) / 3.
                 "concurrency": {"stable": 1.5, "panic": 1.5},
                 "rps": {"stable": 16.0, "panic": 16.0},
                 "pods": 2, "last_stat_time": "2019-03-14T14:09:29Z"},
                {"namespace": "other", "name": "r2",
                 "concurrency": {"stable": 4.0, "panic": 4.0},
                 "rps": {"stable": 0.0, "panic": 0.0},
                 "pods": 1, "last_stat_time": "2019-03-14T14:09:29Z"},
            ],
        }
        code, body = await get_json(server, b"/api/v1/revisions/")  # trailing slash
        assert code == 200 and len(body["revisions"]) == 2
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_one_revision_and_unknown_ones():
    server = await serving(fed_aggregator())
    try:
        code, body = await get_json(server, b"/api/v1/revisions/ns/rev")
        assert code == 200
        assert body["concurrency"] == {"stable": 1.5, "panic": 1.5}
        assert body["pods"] == 2
        for path in (b"/api/v1/revisions/ns/nope", b"/api/v1/revisions/nope/rev"):
            code, body = await get_json(server, path)
            assert code == 404
            assert body == {"error": "no such revision: " + path.decode().split("/", 4)[4]}
        for path in (b"/api", b"/api/v1", b"/api/v2/revisions", b"/api/v1/revisions/ns",
                     b"/api/v1/revisions/ns/rev/x"):
            code, body = await get_json(server, path)
            assert code == 404, path
            assert "error" in body
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_only_get_and_head():
    server = await serving(fed_aggregator())
    try:
        agent = Agent(reactor)
        url = b"http://127.0.0.1:%d/api/v1/revisions" % port_of(server)
        response = await bounded(agent.request(b"POST", url, Headers({})))
        body = await bounded(readBody(response))
        assert response.code == 405
        assert response.headers.getRawHeaders(b"allow") == [b"GET, HEAD"]
        assert json.loads(body) == {"error": "method not allowed"}
        response = await bounded(agent.request(b"HEAD", url, Headers({})))
        assert response.code == 200
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_stats_over_websocket_reach_the_api():
    # In process: frames -> server.stats -> aggregator.record -> /api (at reactor time).
    aggregator = Aggregator(reactor)
    server = await serving(aggregator)
    try:
        client = await connect(port_of(server))
        stats = [StatMessage("ns-ws", "rev-ws", "activator-0", 3.5, 0.5, 7.0, 2.0),
                 StatMessage("ns-ws", "rev-ws", "activator-1", 1.0, 0.0, 1.0, 0.0)]
        client.send_frame(encode_protobuf(stats))
        received = await take(server, 2)
        for stat in received:
            aggregator.record(stat)
        code, body = await get_json(server, b"/api/v1/revisions/ns-ws/rev-ws")
        assert code == 200
        # Both stats are in the bucket of the second they were received in (one frame:
        # one second, unless the server stamps each stat and a second ends between them),
        # and the window counts the buckets from the first write: 3 + 1 and 5 + 1 over 1.
        buckets = len({stat.received_at // S for stat in received})
        assert body["concurrency"] == {"stable": 4.0 / buckets, "panic": 4.0 / buckets}
        assert body["rps"] == {"stable": 6.0 / buckets, "panic": 6.0 / buckets}
        assert body["pods"] == 2
        client.transport.loseConnection()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


def test_overflowing_sums_are_null_not_infinity():
    clock = Clock()
    clock.advance(T0)
    aggregator = Aggregator(clock)
    for _ in range(2):  # finite stats whose sum overflows
        aggregator.record(StatMessage("ns", "big", "a", 1e308, received_at=T0 * S))
    body = revision_json(aggregator.revision("ns", "big"))
    assert body["concurrency"] == {"stable": None, "panic": None}
    assert json.loads(json.dumps(body, allow_nan=False))["rps"] == {"stable": 0.0, "panic": 0.0}


@pytest_twisted.ensureDeferred
async def test_a_percent_escape_in_a_name_is_decoded_once():
    aggregator = fed_aggregator()
    at = (T0 + 2) * S
    aggregator.record(StatMessage("ns", "a%41", "p", 7.0, received_at=at))
    aggregator.record(StatMessage("ns", "aA", "p", 1.0, received_at=at))
    server = await serving(aggregator)
    try:
        # the URL of revision "a%41" escapes its "%": twisted.web undoes that, once
        code, body = await get_json(server, b"/api/v1/revisions/ns/a%2541")
        assert code == 200 and body["name"] == "a%41", body
        code, body = await get_json(server, b"/api/v1/revisions/ns/a%41")
        assert code == 200 and body["name"] == "aA", body
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_a_name_that_is_not_utf8_is_no_such_revision():
    server = await serving(fed_aggregator())
    try:
        for path in (b"/api/v1/revisions/ns/%FF", b"/api/v1/revisions/%C3%28/rev"):
            code, body = await get_json(server, path)
            assert code == 404, path
            assert body == {"error": "no such revision"}
    finally:
        await bounded(server.stopService())
