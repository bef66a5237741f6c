"""/metrics and /api at thousands of revisions (issue 10, point 7): rendered in slices
between which the reactor runs on, once for a flood of requests, and the per-minute
summary never computes the averages."""

import json

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from wsclient import bounded, http_get, port_of, raw_connect, until

from statserver.aggregation.aggregator import Aggregator
from statserver.model import StatMessage
from statserver.tap import Options, makeService

REVISIONS = 2000


def fill(aggregator):
    now = int(reactor.seconds() * 1e9)
    aggregator.record_many([
        StatMessage(f"ns-{r % 7}", f"rev-{r}", "activator-1", 2.0, 0.0, 5.0, 0.0,
                    received_at=now)
        for r in range(REVISIONS)
    ])


async def start_command():
    options = Options()
    options.parseOptions(["--port", "tcp:0:interface=127.0.0.1"])
    service = makeService(options, reactor=reactor)
    service.privilegedStartService()
    service.startService()
    await bounded(service.server.listening)
    aggregator = next(s for s in service.sinks if isinstance(s, Aggregator))
    fill(aggregator)
    return service, aggregator


@pytest_twisted.ensureDeferred
async def test_a_render_yields_to_the_reactor_between_slices():
    service, _ = await start_command()
    try:
        for page in (service.server.metrics_page, service.server.root.children[b"api"]):
            body = page.render_cache.body()
            turned = Deferred()
            reactor.callLater(0, turned.callback, None)
            await bounded(turned)
            assert not body.called  # the reactor ran while the body was rendering
            assert len(await bounded(body)) > REVISIONS * 50
    finally:
        await bounded(service.stopService())


@pytest_twisted.ensureDeferred
async def test_a_flood_of_pipelined_scrapes_costs_one_render():
    service, _ = await start_command()
    port = port_of(service.server)
    client = None
    try:
        client = await raw_connect(port)
        client.transport.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
        others = [http_get(port, b"/metrics") for _ in range(5)]
        apis = [http_get(port, b"/api/v1/revisions") for _ in range(5)]
        bodies = [body for _, _, body in [await d for d in others]]
        await bounded(until(lambda: client.received.count(b"HTTP/1.1 200") == 10))
        await bounded(until(lambda: client.received.endswith(bodies[0])))
        assert len(set(bodies)) == 1
        assert bodies[0].count(b"statserver_revision_pods{") == REVISIONS
        assert service.server.metrics_page.render_cache.renders == 1
        lists = [json.loads(body) for _, _, body in [await d for d in apis]]
        assert all(len(body["revisions"]) == REVISIONS for body in lists)
        assert service.server.root.children[b"api"].render_cache.renders == 1
        code, _, _ = await http_get(port, b"/healthz")
        assert code == 200
    finally:
        if client is not None:  # an HTTP/1.1 connection stays open
            client.transport.loseConnection()
            await bounded(client.lost)
        await bounded(service.stopService())


@pytest_twisted.ensureDeferred
async def test_the_summary_does_not_compute_every_revisions_averages():
    service, aggregator = await start_command()
    # every way to read a revision's averages, counted: the summary needs only how many
    # revisions there are (len), never their averages
    computed = []
    for method in ("revisions", "revisions_in_slices", "revision"):
        real = getattr(aggregator, method)
        setattr(aggregator, method,
                lambda *a, real=real, method=method: computed.append(method) or real(*a))
    try:
        [summary] = [s for s in service.sinks if type(s).__name__ == "Summary"]
        assert summary.report()["decode_errors"] == 0
        assert computed == []
    finally:
        await bounded(service.stopService())

