"""The dashboard's HTTP side over real HTTP on 127.0.0.1 (no browser): the redirect of a
browser's ``GET /``, the security headers, ``/api/v1/connections``, the event stream's
shared snapshot and ``/dashboard/history``."""

import json
import re
import time
from importlib import resources

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Cooperator
from twisted.web.client import Agent
from twisted.web.http_headers import Headers
from wsclient import bounded, connect, http_get, port_of, start_server, until

from statserver.aggregation.aggregator import Aggregator
from statserver.aggregation.api import ApiResource
from statserver.dashboard import CONTENT_SECURITY_POLICY, install
from statserver.dashboard.history import History
from statserver.model import StatMessage
from statserver.server.resources import prefers_html
from statserver.wire import encode_json, encode_protobuf
from statserver.wire.gobstat import encode_stat_frame

CHROME_ACCEPT = (b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                 b"image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
FIREFOX_ACCEPT = b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def serving(interval=1.0, history=None):
    """A StatsServer with an aggregator fed by its queue, the API and the dashboard."""
    server = await start_server()
    aggregator = Aggregator(reactor)
    server.root.putChild(b"api", ApiResource(aggregator, connections=server.connection_infos))
    dashboard = install(server, aggregator, reactor=reactor, history=history,
                        interval=interval)
    dashboard.startService()

    def feed(stat):
        aggregator.record(stat)
        server.stats.get().addCallback(feed)

    server.stats.get().addCallback(feed)
    return server, aggregator, dashboard


async def stop(server, dashboard):
    dashboard.stopService()
    await bounded(server.stopService())


@pytest.mark.parametrize("accept, html", [
    (CHROME_ACCEPT, True),
    (FIREFOX_ACCEPT, True),
    (b"text/html", True),
    (b"TEXT/HTML; q=0.5", True),
    (b"*/*", False),  # curl
    (None, False),
    (b"application/json, text/html;q=0.5", False),
    (b"text/html;q=0, */*", False),
    (b"text/html;q=x", False),
    (b"application/xhtml+xml", True),
])
def test_prefers_html(accept, html):
    assert prefers_html(accept) is html


@pytest_twisted.ensureDeferred
async def test_only_a_browsers_plain_get_of_root_is_redirected():
    server, _, dashboard = await serving()
    port = port_of(server)
    try:
        code, headers, body = await http_get(port, b"/", {b"accept": [CHROME_ACCEPT]})
        assert code == 302
        assert headers.getRawHeaders(b"location") == [b"/dashboard/"]
        assert headers.getRawHeaders(b"content-security-policy") == [CONTENT_SECURITY_POLICY]
        # everything else about / is as it was: non-browser GETs 426 ...
        for accept in (None, b"*/*", b"application/json"):
            code, _, _ = await http_get(port, b"/", {b"accept": [accept]} if accept else None)
            assert code == 426
        # ... on other paths too, even for a browser
        code, _, _ = await http_get(port, b"/stats", {b"accept": [CHROME_ACCEPT]})
        assert code == 426
        # a kubelet probe gets its 200
        code, _, body = await http_get(port, b"/", {b"accept": [CHROME_ACCEPT],
                                                    b"user-agent": [b"kube-probe/1.30"]})
        assert (code, body) == (200, b"")
        # a request with Upgrade is never redirected (here: autobahn refuses a handshake
        # without a key with 400, as it does without the dashboard)
        response = await bounded(Agent(reactor).request(
            b"GET", b"http://127.0.0.1:%d/" % port,
            Headers({b"accept": [CHROME_ACCEPT], b"upgrade": [b"websocket"],
                     b"connection": [b"upgrade"]})))
        assert response.code == 400
        # and a sender's WebSocket on / still opens and delivers
        sender = await connect(port)
        sender.send_frame(encode_protobuf([StatMessage("ns", "rev", "p", 1.0)]))
        await bounded(until(lambda: server.metrics.stats_received.value("protobuf") == 1))
        sender.sendClose()
    finally:
        await stop(server, dashboard)


@pytest_twisted.ensureDeferred
async def test_page_and_assets_carry_the_csp_and_are_read_only():
    server, _, dashboard = await serving()
    port = port_of(server)
    try:
        for path, kind in [(b"/dashboard/", b"text/html; charset=utf-8"),
                           (b"/dashboard/dashboard.js", b"text/javascript; charset=utf-8"),
                           (b"/dashboard/dashboard.css", b"text/css; charset=utf-8"),
                           (b"/dashboard/icon.svg", b"image/svg+xml")]:
            code, headers, body = await http_get(port, path)
            assert code == 200, path
            assert headers.getRawHeaders(b"content-type") == [kind]
            csp = headers.getRawHeaders(b"content-security-policy")[0]
            assert csp == CONTENT_SECURITY_POLICY
            assert headers.getRawHeaders(b"x-content-type-options") == [b"nosniff"]
        directives = dict(d.strip().split(" ", 1) for d in csp.decode().split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
        assert all("unsafe" not in v and "http" not in v and "*" not in v
                   for v in directives.values())
        code, headers, _ = await http_get(port, b"/dashboard")
        assert (code, headers.getRawHeaders(b"location")) == (301, [b"/dashboard/"])
        code, _, _ = await http_get(port, b"/dashboard/nope.js")
        assert code == 404
        response = await bounded(Agent(reactor).request(
            b"POST", b"http://127.0.0.1:%d/dashboard/" % port))
        assert response.code == 405
        assert response.headers.getRawHeaders(b"allow") == [b"GET, HEAD"]
    finally:
        await stop(server, dashboard)


def test_the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere():
    page = resources.files("statserver.dashboard").joinpath("static/index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="dashboard.js" defer>']
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"\son\w+=", page)  # no event handler attributes
    assert "//" not in re.sub(r"<!--.*?-->", "", page).replace("http://www.w3.org", "")
    script = resources.files("statserver.dashboard").joinpath("static/dashboard.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "eval(" not in script and "document.write" not in script


@pytest_twisted.ensureDeferred
async def test_api_connections_lists_every_sender_with_its_format_and_counts():
    server, _, dashboard = await serving()
    port = port_of(server)
    try:
        before = time.time()
        gob = await connect(port)
        proto = await connect(port)
        plain = await connect(port)
        silent = await connect(port)
        peers = {c: f"tcp4:127.0.0.1:{c.transport.getHost().port}"
                 for c in (gob, proto, plain, silent)}
        stat = StatMessage("ns", "rev", "p", 1.0, timestamp=int(before) * 10**9)
        gob.send_frame(encode_stat_frame(stat, era="v12"))
        gob.send_frame(encode_stat_frame(stat, era="v12"))
        gob.send_frame(b"\x30not gob")  # a bad gob frame
        proto.send_frame(encode_protobuf([stat, stat, stat]))
        proto.send_frame(encode_protobuf([stat]))
        proto.send_frame(encode_json(stat).encode(), binary=False)
        plain.send_frame(encode_protobuf([stat._replace(timestamp=None)]))
        await bounded(until(lambda: sum(i.frames for i in server.connection_infos()) == 7))
        code, headers, body = await http_get(port, b"/api/v1/connections")
        assert code == 200
        assert headers.getRawHeaders(b"content-type") == [b"application/json"]
        rows = {c["peer"]: c for c in json.loads(body)["connections"]}
        peer = peers.get
        assert set(rows) == set(peers.values())
        g, p, s = rows[peer(gob)], rows[peer(proto)], rows[peer(silent)]
        assert g["formats"] == [{"kind": "v12", "era": "v12 · Knative v0.12–v0.15",
                                 "format": "gob", "frames": 2}]
        assert (g["frames"], g["stats"], g["bad_frames"]) == (3, 2, 1)
        assert p["formats"] == [
            {"kind": "protobuf+timestamp", "era": "protobuf+timestamp · Knative v0.19 and later",
             "format": "protobuf", "frames": 2},
            {"kind": "json", "era": "json · Knative v0.16–v0.19", "format": "json", "frames": 1}]
        assert (p["frames"], p["stats"], p["bad_frames"]) == (3, 5, 0)
        assert rows[peer(plain)]["formats"] == [
            {"kind": "protobuf", "era": "protobuf · Knative v0.17–v0.18", "format": "protobuf",
             "frames": 1}]
        assert (s["frames"], s["formats"], s["last_frame_age_seconds"]) == (0, [], None)
        for row in (g, p):
            assert 0 <= row["last_frame_age_seconds"] < 10
        since = row["connected_since"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", since)
        silent.sendClose()
        await bounded(until(lambda: len(server.connection_infos()) == 3))
        code, _, body = await http_get(port, b"/api/v1/connections")
        assert peer(silent) not in {c["peer"] for c in json.loads(body)["connections"]}
        for client in (gob, proto, plain):
            client.sendClose()
    finally:
        await stop(server, dashboard)


class EventStream(Protocol):
    """The snapshots of one ``/dashboard/events`` stream, as they arrive."""

    def __init__(self):
        self.buffer = b""
        self.events = []
        self.ended = Deferred()

    def dataReceived(self, data):
        self.buffer += data
        while b"\n\n" in self.buffer:
            event, self.buffer = self.buffer.split(b"\n\n", 1)
            if event.startswith(b"event: snapshot\ndata: "):
                self.events.append(event)

    def connectionLost(self, reason):
        self.ended.callback(None)


async def open_stream(port):
    response = await bounded(Agent(reactor).request(
        b"GET", b"http://127.0.0.1:%d/dashboard/events" % port,
        Headers({b"accept": [b"text/event-stream"]})))
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [
        b"text/event-stream; charset=utf-8"]
    stream = EventStream()
    response.deliverBody(stream)
    return stream


@pytest_twisted.ensureDeferred
async def test_one_snapshot_per_tick_shared_by_every_viewer():
    server, aggregator, dashboard = await serving(interval=0.2)
    port = port_of(server)
    reads = []  # one per snapshot built: it lists the revisions once, then reads each
    real = aggregator.keys
    aggregator.keys = lambda: reads.append(1) or real()
    try:
        sender = await connect(port)
        sender.send_frame(encode_protobuf([StatMessage("ns", "rev", "p", 2.0, 0.0, 3.0)]))
        streams = [await open_stream(port) for _ in range(5)]
        await bounded(until(lambda: all(len(s.events) >= 4 for s in streams)))
        assert len(dashboard.viewers) == 5
        # the same bytes to everyone, however many watch: one read of the revisions a tick
        reads.clear()
        ticks = 3
        for _ in range(ticks):
            seen = len(streams[0].events)
            await bounded(until(lambda seen=seen: len(streams[0].events) > seen))
        assert 1 <= len(reads) <= ticks + 1
        await bounded(until(lambda: len({s.events[-1] for s in streams}) == 1))
        snapshot = json.loads(streams[0].events[-1].split(b"data: ", 1)[1])
        assert snapshot["revisions"][0][:3] == ["ns", "rev", 2.0]
        assert snapshot["server"]["viewers"] == 5
        assert len(snapshot["connections"]) == 1
        # stopping the dashboard ends every stream (the page then reconnects)
        dashboard.stopService()
        for s in streams:
            await bounded(s.ended)
        assert dashboard.viewers == set()
        sender.sendClose()
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_viewers_past_the_limit_are_refused_with_503():
    server, _, dashboard = await serving()
    dashboard.max_viewers = 2
    port = port_of(server)
    try:
        streams = [await open_stream(port), await open_stream(port)]
        code, _, body = await http_get(port, b"/dashboard/events")
        assert (code, body) == (503, b"too many dashboard viewers\n")
        assert len(dashboard.viewers) == 2
        assert streams[0].events  # the first snapshot is sent at once
    finally:
        await stop(server, dashboard)


@pytest_twisted.ensureDeferred
async def test_history_endpoint_gives_the_samples_of_the_revisions_asked_for():
    history = History(length=10, resolution=1)
    server, aggregator, dashboard = await serving(interval=0.1, history=history)
    port = port_of(server)
    try:
        sender = await connect(port)
        sender.send_frame(encode_protobuf([StatMessage("ns", "a/b&c", "p", 2.0, 0.0, 3.0),
                                           StatMessage("ns", "other", "p", 1.0)]))
        await bounded(until(lambda: len(history.times) >= 2), 10)
        code, _, body = await http_get(
            port, b"/dashboard/history?ns=ns&name=a%2Fb%26c&ns=ns&name=unknown")
        assert code == 200
        body = json.loads(body)
        assert len(body["times"]) >= 2 and body["resolution_seconds"] == 1
        [revision] = body["revisions"]
        assert (revision["namespace"], revision["name"]) == ("ns", "a/b&c")
        stable_concurrency = revision["samples"][0]
        assert len(stable_concurrency) == len(body["times"])
        assert stable_concurrency[-1] == 2.0
        sender.sendClose()
    finally:
        await stop(server, dashboard)


class SlowStream(EventStream):
    """A raw HTTP/1.1 client of ``/dashboard/events`` that stops reading at once (its
    socket buffers fill, then the server's), until ``resume()``."""

    def connectionMade(self):
        self.transport.write(b"GET /dashboard/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.transport.pauseProducing()

    def dataReceived(self, data):
        # chunked: each event is one chunk ("<size>\r\n<event>\r\n")
        self.buffer += data
        self.events = re.findall(rb"event: snapshot\ndata: \{.*?\]\}\n\n", self.buffer)

    def resume(self):
        self.transport.resumeProducing()


@pytest_twisted.ensureDeferred
async def test_a_slow_viewer_skips_snapshots_and_catches_up():
    server, aggregator, dashboard = await serving(interval=0.05)
    port = port_of(server)
    slow = SlowStream()
    try:
        for i in range(4000):  # about 0.2 MB a snapshot: the socket buffers fill in seconds
            aggregator.record(StatMessage(f"namespace-{i % 10}", f"revision-{i:05d}", "pod",
                                          1.0, received_at=int(time.time() * 1e9)))
        await bounded(TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(
            _Once(slow)))
        fast = await open_stream(port)
        await bounded(until(lambda: any(v.skipped > 3 for v in dashboard.viewers), 0.05), 30)
        [stuck] = [v for v in dashboard.viewers if v.skipped > 3]
        # (skipped counts only while paused; the kernel's buffers still grow now and then,
        # which resumes it for a snapshot, so paused is waited for, not read at once)
        await bounded(until(lambda: stuck.paused, 0.01), 30)
        # the other viewer is not held up by it
        seen = len(fast.events)
        await bounded(until(lambda: len(fast.events) > seen + 3), 30)
        # once it reads again, it gets whole snapshots again
        slow.resume()
        await bounded(until(lambda: not stuck.paused), 30)
        # (it may fall behind and skip again: its reader shares this loaded reactor)
        await bounded(until(lambda: len(slow.events) > 2), 30)
        assert all(json.loads(e.split(b"data: ", 1)[1])["revisions"] for e in slow.events)
    finally:
        await stop(server, dashboard)
        if slow.transport is not None:  # HTTP/1.1 keeps the connection after the stream
            slow.transport.loseConnection()
            await bounded(slow.ended)


class _Once(Factory):
    def __init__(self, protocol):
        self._protocol = protocol

    def buildProtocol(self, addr):
        return self._protocol


@pytest_twisted.ensureDeferred
async def test_head_of_the_event_stream_gives_its_headers_and_opens_no_stream():
    server, _, dashboard = await serving()
    try:
        response = await bounded(Agent(reactor).request(
            b"HEAD", b"http://127.0.0.1:%d/dashboard/events" % port_of(server)))
        assert response.code == 200
        assert response.headers.getRawHeaders(b"content-type") == [
            b"text/event-stream; charset=utf-8"]
        assert dashboard.viewers == set()
    finally:
        await stop(server, dashboard)


@pytest_twisted.ensureDeferred
async def test_a_viewer_that_goes_away_is_dropped(logged):
    server, _, dashboard = await serving(interval=0.1)
    port = port_of(server)
    try:
        leaving, staying = await open_stream(port), await open_stream(port)
        await bounded(until(lambda: leaving.events and staying.events))
        leaving.transport.stopProducing()  # the browser tab closed
        await bounded(leaving.ended)
        await bounded(until(lambda: len(dashboard.viewers) == 1))

        # a viewer whose connection fails as a snapshot is written is dropped, logged
        [viewer] = dashboard.viewers

        def gone(data):
            raise RuntimeError("connection gone for the test")

        viewer.request.write = gone
        await bounded(until(lambda: not dashboard.viewers))
        [event] = [e for e in logged if e.get("log_format") == "dashboard viewer dropped"]
        assert event["log_failure"].check(RuntimeError)
        # (here the connection was not really gone): the server ends it
        await bounded(staying.ended)
    finally:
        await stop(server, dashboard)


@pytest_twisted.ensureDeferred
async def test_a_snapshot_that_fails_is_logged_and_the_next_one_is_built(logged):
    server, aggregator, dashboard = await serving(interval=0.1)
    real = aggregator.keys
    failures = []

    def keys():
        if not failures:
            failures.append(1)
            raise RuntimeError("aggregator bug for the test")
        return real()

    aggregator.keys = keys
    try:
        stream = await open_stream(port_of(server))
        await bounded(until(lambda: stream.events))
        [event] = [e for e in logged if e.get("log_format") == "dashboard snapshot failed"]
        assert event["log_failure"].check(RuntimeError)
    finally:
        await stop(server, dashboard)
    dashboard.stopService()  # stopping again (as a parent service may) is harmless
    assert not [e for e in logged if "log_failure" in e and e is not event]


def clocked_dashboard(revisions):
    """A Dashboard on a ``Clock`` (no reactor, nothing listening) over an aggregator
    holding ``revisions`` revisions, the history's first sample taken."""
    from twisted.internet.task import Clock

    from statserver.dashboard import Dashboard
    from statserver.server.service import StatsServer

    clock = Clock()
    clock.advance(1_800_000_000)
    aggregator = Aggregator(clock)
    at = int(clock.seconds() * 1e9)
    aggregator.record_many([StatMessage("ns", f"rev-{i:04d}", "p", 1.0 + i, 0.0, 2.0,
                                        timestamp=at, received_at=at)
                            for i in range(revisions)])
    history = History(length=60, resolution=5)
    dashboard = Dashboard(StatsServer(endpoint=None, reactor=clock), aggregator,
                          reactor=clock, history=history)
    dashboard.startService()
    dashboard.build_now(clock.seconds(), True)
    return clock, dashboard


def test_while_nobody_watches_a_tick_samples_the_history_and_encodes_nothing(monkeypatch):
    from statserver.dashboard import service

    clock, dashboard = clocked_dashboard(1_200)  # three build steps
    encoded = []
    real = service._encode
    monkeypatch.setattr(service, "_encode", lambda value: encoded.append(1) or real(value))
    clock.advance(dashboard.history.resolution)  # the loop's tick: a sample is due
    for _ in range(10):
        clock.advance(0)  # the build's steps
    assert len(dashboard.history.times) == 2
    stable = dashboard.history.revision("ns", "rev-1199")[0]
    assert stable == [1200.0, 1200.0]
    assert encoded == []  # no rows sorted into JSON for nobody


class EventStreamRequest:
    """What the dashboard uses of an event stream's request (the clocked tests' viewer)."""

    def __init__(self):
        self.written = []
        self.producer = None

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None

    def notifyFinish(self):
        return Deferred()

    def write(self, data):
        self.written.append(data)

    def finish(self):
        pass


def test_a_viewer_coming_during_a_history_sample_gets_its_snapshot_when_it_ends():
    clock, dashboard = clocked_dashboard(1_200)
    steps = []
    dashboard._cooperator = Cooperator(scheduler=steps.append,  # a build step a call
                                       terminationPredicateFactory=lambda: lambda: True)
    clock.advance(dashboard.history.resolution)  # a build for the history alone begins
    steps.pop(0)()  # its first step
    request = EventStreamRequest()
    assert dashboard.add_viewer(request)
    while steps:  # (and no tick: the clock does not move)
        steps.pop(0)()
    snapshots = b"".join(request.written).split(b"event: snapshot\ndata: ")[1:]
    # the one built a sample ago at once (a first paint), then the fresh one
    assert [json.loads(s)["time"] for s in snapshots] == [clock.seconds() - 5, clock.seconds()]
    assert len(json.loads(snapshots[-1])["revisions"]) == 1_200
    dashboard.stopService()
