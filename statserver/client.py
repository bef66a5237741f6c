"""A durable sending connection to a stats server, like ``knative.dev/pkg/websocket``'s
``ManagedConnection``.

``StatsClient`` dials the server, keeps the connection up for as long as it runs and
sends ``StatMessage``s in any format a Knative sender uses::

    client = StatsClient("ws://autoscaler:8080/", reactor=reactor)
    client.startService()
    await client.when_connected()
    await client.send([stat], format="protobuf")

What it copies from Knative:

- reconnect forever: after a failed dial it waits 100 ms × 1.3ⁿ plus up to 50 % jitter
  (counted from when Twisted's ``HostnameEndpoint`` reports the failure: a refused
  connection is reported at its next attempt slot, up to 0.3 s after the refusal);
  Knative's ``wait.Backoff{Steps: 20}`` has no cap but gives up after 20 dials and starts
  over, so the longest wait is 100 ms × 1.3¹⁸ ≈ 11.2 s (16.8 s with jitter), then a dial at
  once and the series again;
- a ping every ``pong_timeout / 3`` (3.3 s) and a reconnect when no pong came for
  ``pong_timeout`` (10 s) — done here with the reactor's own timers rather than autobahn's
  auto-ping, which runs on txaio's global loop and waits for each pong before the next ping;
- a 3 s handshake timeout.

Where it differs: a lost connection is redialled after the first backoff step (100 ms)
rather than at once, so that a server that accepts and drops does not spin us, except
after a close 1012 (the server is restarting), which is redialled at once.

``send()`` never queues while the connection is down: it fails at once with
``NotConnected``. While the socket's buffer is full its Deferred waits for it to drain, and
a caller that does not wait gets ``SendBufferFull`` once ``max_buffer`` bytes are pending.
"""

import random

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.util import parse_url
from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from statserver.constants import CLOSE_SERVICE_RESTART, FORMATS


class NotConnected(Exception):
    """The stats server is not connected now (the client is redialling or stopped)."""


class SendBufferFull(Exception):
    """Too many bytes are waiting for a slow server: wait for earlier sends first."""


class Backoff:
    """Knative's dial backoff: ``initial`` × ``factor``ⁿ seconds with up to ``jitter``
    more, over ``steps`` dials, then a dial at once and the series again."""

    def __init__(self, initial=0.1, factor=1.3, jitter=0.5, steps=20, random=random.random):
        self.initial, self.factor, self.jitter, self.steps = initial, factor, jitter, steps
        self._random = random
        self.failures = 0

    def reset(self):
        self.failures = 0

    def next_delay(self):
        """Seconds to wait after one more failed dial."""
        self.failures += 1
        if self.failures >= self.steps:
            self.failures = 0
            return 0.0
        base = self.initial * self.factor ** (self.failures - 1)
        return base * (1 + self._random() * self.jitter)


def encode_frames(messages, format, gob_era="v10"):
    """``[(payload bytes, is_binary)]``: the WebSocket messages a Knative sender of
    ``format`` writes for ``messages`` (gob ones of era ``gob_era``)."""
    if format == "gob":
        from statserver.wire.gobstat import encode_stat_frame

        return [(encode_stat_frame(m, era=gob_era), True) for m in messages]
    if format == "json":
        from statserver.wire import encode_json

        return [(encode_json(m).encode("utf-8"), False) for m in messages]
    if format == "protobuf":
        from statserver.wire import encode_protobuf

        return [(encode_protobuf(list(messages)), True)] if messages else []
    raise ValueError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")


@implementer(IPushProducer)
class _Flow:
    """Tracks whether the transport's write buffer is over its mark (Twisted pauses its
    registered producer), and who waits for it to drain."""

    def __init__(self):
        self.paused = False
        self.pending_bytes = 0
        self._waiters = []

    def wait(self):
        if not self.paused:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiters.append(d)
        return d

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self.pending_bytes = 0
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def stopProducing(self):
        self.fail(NotConnected("the connection closed before the data was written"))

    def fail(self, exc):
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.errback(exc)


class _SenderProtocol(WebSocketClientProtocol):
    def onOpen(self):
        self.flow = _Flow()
        self.transport.registerProducer(self.flow, True)
        self.factory.client._opened(self)

    def onPong(self, payload):
        self.factory.client._pong(self)

    def onClose(self, wasClean, code, reason):
        flow = getattr(self, "flow", None)
        if flow is not None:
            flow.fail(NotConnected(f"the connection closed: {reason or code}"))
        self.factory.client._closed(self, self.remoteCloseCode, reason)


class StatsClient(service.Service):
    """Keeps one WebSocket connection to ``url`` up and sends stats over it."""

    _log = Logger()

    def __init__(self, url, *, reactor=None, gob_era="v10", pong_timeout=10.0,
                 ping_interval=None, handshake_timeout=3.0, max_buffer=1 << 20,
                 backoff=None):
        if reactor is None:
            from twisted.internet import reactor
        self.url = url
        self._reactor = reactor
        self.gob_era = gob_era
        self.pong_timeout = pong_timeout
        self.ping_interval = pong_timeout / 3 if ping_interval is None else ping_interval
        self.handshake_timeout = handshake_timeout
        self.max_buffer = max_buffer
        self.backoff = backoff or Backoff()
        secure, host, port, _resource, _path, _params = parse_url(url)
        self._factory = WebSocketClientFactory(url, reactor=reactor)
        self._factory.protocol = _SenderProtocol
        self._factory.client = self
        self._factory.setProtocolOptions(openHandshakeTimeout=handshake_timeout,
                                         closeHandshakeTimeout=1.0)
        self._endpoint = endpoints.HostnameEndpoint(reactor, host, port,
                                                    timeout=handshake_timeout)
        if secure:
            from statserver.tls import client_tls

            self._endpoint = client_tls(host, self._endpoint)
        self._protocol = None  # the open connection, if any
        self._dialing = None  # the Deferred of a dial in progress
        self._redial = None  # the delayed call of the next dial
        self._ping_call = None
        self._pong_deadline = None
        self._waiting = []  # when_connected() Deferreds
        self._closed_waiters = []
        self.connections = 0  # connections opened so far

    @property
    def connected(self):
        """True while a connection is open and sends go out."""
        return self._protocol is not None

    def when_connected(self):
        """A Deferred that fires (with None) once a connection is open."""
        if self._protocol is not None:
            return defer.succeed(None)
        d = defer.Deferred(lambda d: self._waiting.remove(d))
        self._waiting.append(d)
        return d

    def when_disconnected(self):
        """A Deferred that fires (with None) once no connection is open."""
        if self._protocol is None:
            return defer.succeed(None)
        d = defer.Deferred(lambda d: self._closed_waiters.remove(d))
        self._closed_waiters.append(d)
        return d

    def startService(self):
        super().startService()
        self.backoff.reset()
        self._dial()

    def stopService(self):
        """Stop redialling and close the connection (1000); fires once it is closed."""
        super().stopService()
        if self._redial is not None and self._redial.active():
            self._redial.cancel()
        self._redial = None
        if self._dialing is not None:
            self._dialing.cancel()
        proto = self._protocol
        if proto is None:
            return defer.succeed(None)
        d = self.when_disconnected()
        proto.sendClose(1000)
        return d

    def send(self, messages, format="gob"):
        """Send ``messages`` (StatMessages) the way a Knative sender of ``format`` does:
        ``"gob"`` one fresh-encoder gob stream a frame (era ``gob_era``), ``"json"`` one
        text frame a stat, ``"protobuf"`` one ``WireStatMessages`` frame for them all.

        Returns a Deferred that fires with the number of frames once they are handed to
        the socket and its buffer is under its mark, or fails with ``NotConnected`` (at
        once while disconnected), ``SendBufferFull`` or the encoder's error.
        """
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")
        proto = self._protocol
        if proto is None:
            return defer.fail(NotConnected(f"not connected to {self.url}"))
        flow = proto.flow
        if flow.paused and flow.pending_bytes >= self.max_buffer:
            return defer.fail(SendBufferFull(
                f"{flow.pending_bytes} bytes wait for {self.url}: wait for earlier sends"))
        try:
            frames = encode_frames(messages, format, self.gob_era)
        except Exception:
            return defer.fail()
        for payload, is_binary in frames:
            proto.sendMessage(payload, isBinary=is_binary)
            if flow.paused:
                flow.pending_bytes += len(payload)
        count = len(frames)
        return flow.wait().addCallback(lambda _: count)

    # -- connection management --

    def _dial(self):
        self._redial = None
        if not self.running:
            return
        d = self._dialing = self._endpoint.connect(self._factory)
        d.addTimeout(self.handshake_timeout, self._reactor)

        def failed(f):
            self._dialing = None
            if self.running:
                delay = self.backoff.next_delay()
                self._log.info("cannot connect to {url} ({why}); next try in {delay:.2f}s",
                               url=self.url, why=f.getErrorMessage(), delay=delay)
                self._schedule(delay)

        def connected(proto):
            # TCP is up; the WebSocket handshake ends in _opened or _closed.
            self._dialing = None

        d.addCallbacks(connected, failed)

    def _schedule(self, delay):
        if self.running and self._redial is None:
            self._redial = self._reactor.callLater(delay, self._dial)

    def _opened(self, proto):
        if not self.running:
            proto.sendClose(1000)
            return
        self._protocol = proto
        self.connections += 1
        self.backoff.reset()
        self._log.info("connected to {url}", url=self.url)
        self._ping_call = self._reactor.callLater(self.ping_interval, self._ping)
        self._pong_deadline = self._reactor.callLater(self.pong_timeout, self._no_pong, proto)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def _ping(self):
        self._ping_call = None
        proto = self._protocol
        if proto is None:
            return
        proto.sendPing()
        self._ping_call = self._reactor.callLater(self.ping_interval, self._ping)

    def _pong(self, proto):
        if proto is self._protocol and self._pong_deadline is not None:
            self._pong_deadline.reset(self.pong_timeout)

    def _no_pong(self, proto):
        self._pong_deadline = None
        self._log.warn("no pong from {url} for {timeout}s: reconnecting",
                       url=self.url, timeout=self.pong_timeout)
        proto.dropConnection(abort=True)

    def _closed(self, proto, code, reason):
        if proto is not self._protocol:
            # A handshake that failed, or a connection opened after stop.
            if self.running and self._dialing is None:
                self._log.info("cannot open a WebSocket to {url}: {reason}",
                               url=self.url, reason=reason)
                self._schedule(self.backoff.next_delay())
            self._fire_closed()
            return
        self._protocol = None
        for call in (self._ping_call, self._pong_deadline):
            if call is not None and call.active():
                call.cancel()
        self._ping_call = self._pong_deadline = None
        self._fire_closed()
        if not self.running:
            return
        if code == CLOSE_SERVICE_RESTART:
            self._log.info("{url} is restarting (1012): reconnecting at once", url=self.url)
            self._schedule(0)
        else:
            self._log.info("lost the connection to {url} ({reason}): reconnecting",
                           url=self.url, reason=reason or code)
            self._schedule(self.backoff.next_delay())

    def _fire_closed(self):
        waiters, self._closed_waiters = self._closed_waiters, []
        for d in waiters:
            d.callback(None)
