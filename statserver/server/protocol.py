"""The autobahn side: one protocol instance per sender connection."""

import pprint

import autobahn.websocket.protocol
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.xormasker import create_xor_masker
from twisted.internet.defer import succeed
from twisted.logger import Logger
from zope.interface import implementer

from statserver import SERVER_NAME
from statserver.constants import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_SERVICE_RESTART,
)
from statserver.interfaces import IStatsConnection
from statserver.ratelimit import LimitedLog
from statserver.server.connections import ConnectionInfo

#: Bytes a connection may have waiting to be sent (pongs, pings, a close: the server
#: sends nothing else) before it is closed with 1008: a peer sending pings and never
#: reading would otherwise grow the buffer by a pong per ping, without bound.
MAX_OUTGOING = 64 * 1024


def outgoing_bytes(transport):
    """Bytes a Twisted transport holds that the kernel has not taken yet (0 where the
    transport does not say)."""
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except (AttributeError, TypeError):
        return 0

# Up to this many bytes, one big-integer XOR unmasks faster than autobahn's masker
# object (0.3-0.7 µs against 2.2-2.4 µs with autobahn 26's native masker); above it the
# native one wins (8 KB: 2.7 µs against 9.8).
BIGINT_UNMASK_MAX = 2048


class _LazyPformat:
    """``pprint.pformat(obj)``, made only when the text is wanted."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __format__(self, spec):
        return format(pprint.pformat(self.obj), spec)

    def __str__(self):
        return pprint.pformat(self.obj)

    __repr__ = __str__


# Every autobahn connection pretty-prints its ~40 options for a debug log line, whether
# debug logging is on or not: 18 % of the server's CPU while 2,000 connections open
# (benchmarks/README.md). The line's text, when it is logged, is the same.
if hasattr(autobahn.websocket.protocol, "pformat"):  # pragma: no branch - autobahn releases without it
    autobahn.websocket.protocol.pformat = _LazyPformat


def unmask(data, mask, offset=0):
    """``data`` XORed with the 4-byte WebSocket ``mask``, starting ``offset`` bytes into
    the frame's payload (a frame can arrive over several reads)."""
    offset &= 3
    if offset:
        mask = mask[offset:] + mask[:offset]
    n = len(data)
    if n > BIGINT_UNMASK_MAX:
        return create_xor_masker(mask, n).process(data)
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


@implementer(IStatsConnection)
class StatsServerProtocol(WebSocketServerProtocol):
    """Hands every data frame to the ``StatsServer``; can stop and restart reading
    (backpressure) without its own keepalive pings dropping the peer meanwhile."""

    _log = Logger()
    # autobahn logs a line for many things a peer does (a pong nobody asked for, a
    # failed handshake, a protocol violation): rate-limited per message
    log = LimitedLog(WebSocketServerProtocol.log)

    def __init__(self):
        super().__init__()
        self.reading_paused = False
        self.restarting = False
        # our ping's timeout came while reading was paused: the peer gets a whole
        # timeout again once reading resumes (public: what tests of backpressure watch)
        self.ping_timed_out_while_paused = False
        self.info = None  # a ConnectionInfo once open (/api/v1/connections)

    def connectionMade(self):
        super().connectionMade()
        # The HTTP channel that upgraded this connection stays registered as the TCP
        # transport's producer: it would keep itself, the upgrade request and its
        # headers (about 25 objects for the cyclic collector to scan) alive for as long
        # as the connection lasts.
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()
        try:
            self.transport.setTcpKeepAlive(1)
        except (AttributeError, OSError):  # not TCP (a UNIX socket, a test transport)
            pass

    def onOpen(self):
        try:
            self.info = ConnectionInfo(self.peer, int(self.factory.reactor.seconds() * 1e9))
            self.factory.stats_server.connection_opened(self)
        except Exception:
            self._log.failure("Unexpected error opening {peer}", peer=self.peer)

    def onFrameData(self, payload):
        # The factory turns autobahn's unmasking off (applyMask=False): it builds a new
        # masker object for every frame, through CFFI, about a tenth of a one-stat
        # frame's cost. Every frame's payload (data and control) passes here, so it is
        # unmasked here instead; the pass-through masker counts the frame's bytes so far.
        mask = self.current_frame.mask
        if mask and payload:
            payload = unmask(payload, mask, self.current_frame_masker.pointer() - len(payload))
        return super().onFrameData(payload)

    def onMessageEnd(self):
        # autobahn's own also fires a "message" event for listeners through a txaio
        # Deferred, for every message: nobody listens here, and it cost about 5 % of
        # a one-stat frame's time.
        if not self.failedByMe:
            self.onMessage(b"".join(self.message_data), self.message_is_binary)
        self.message_data = None

    def onMessage(self, payload, isBinary):
        try:
            self.factory.stats_server.frame_received(self, payload, isBinary)
        except Exception:  # never into the reactor
            self._log.failure("Unexpected error handling a frame from {peer}", peer=self.peer)

    def _max_message_size_exceeded(self, msg_size, max_msg_size, reason):
        # autobahn's hook before it fails the connection with 1009: say who and how big
        try:
            self.factory.stats_server.message_too_big(self, msg_size)
        except Exception:
            self._log.failure("Unexpected error logging an oversize message from {peer}",
                              peer=self.peer)
        super()._max_message_size_exceeded(msg_size, max_msg_size, reason)

    def onClose(self, wasClean, code, reason):
        try:
            self.factory.stats_server.connection_closed(self)
        except Exception:
            self._log.failure("Unexpected error closing {peer}", peer=self.peer)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        # autobahn cancels its other timers here but not the close handshake's: a peer
        # dropping TCP after our close frame would leave it (and this protocol) in the
        # reactor for closeHandshakeTimeout seconds
        if self.closeHandshakeTimeoutCall is not None:
            self.closeHandshakeTimeoutCall.cancel()
            self.closeHandshakeTimeoutCall = None
        try:
            self.factory.stats_server.transport_lost(self)
        except Exception:
            self._log.failure("Unexpected error after losing {peer}", peer=self.peer)
        # autobahn fires is_closed with this protocol, which holds it: the one reference
        # cycle of a closed connection. Without it a closed connection is freed by
        # reference counting alone, which garbage collection freezing relies on
        # (statserver/gcpolicy.py). Whoever waited on is_closed has been called already.
        self.is_closed = succeed(None)

    def onPing(self, payload):
        # autobahn queues a pong per ping, whether or not the peer reads them
        if self.state != self.STATE_OPEN:
            return
        if outgoing_bytes(self.transport) > MAX_OUTGOING:
            self.factory.stats_server.connection_refused(self, "outgoing-buffer")
            self.sendCloseFrame(
                code=CLOSE_POLICY_VIOLATION, reasonUtf8=b"not reading", isReply=False
            )
            return
        self.sendPong(payload)

    # ---- backpressure ----

    def pause_reading(self):
        """Stop reading from the socket (the queue is full)."""
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pauseProducing()

    def resume_reading(self):
        """Read again; the peer gets a whole ping timeout from now to answer our ping."""
        if not self.reading_paused:
            return
        self.reading_paused = False
        self.transport.resumeProducing()
        pending = self.autoPingTimeoutCall
        if pending is not None or self.ping_timed_out_while_paused:
            self.ping_timed_out_while_paused = False
            if pending is not None:
                pending.cancel()
            self.autoPingTimeoutCall = None
            if self.autoPingTimeout and self.state == self.STATE_OPEN:
                self.autoPingTimeoutCall = self.factory.reactor.callLater(
                    self.autoPingTimeout, self.onAutoPingTimeout
                )

    def onAutoPingTimeout(self):
        # A paused connection cannot read the pong: wait until reading resumes.
        if self.reading_paused:
            self.autoPingTimeoutCall = None
            self.ping_timed_out_while_paused = True
            return
        super().onAutoPingTimeout()

    # ---- shutdown ----

    def close_for_restart(self, reason=b"Restarting"):
        """Send close 1012 ("service restart"), which autobahn's ``sendClose`` refuses,
        and read on so that the peer's close reply completes the handshake."""
        self.restarting = True
        if self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=CLOSE_SERVICE_RESTART, reasonUtf8=reason, isReply=False)
        self.resume_reading()

    def abort(self):
        """Drop the TCP connection now."""
        self.dropConnection(abort=True)


class StatsServerFactory(WebSocketServerFactory):
    """Builds ``StatsServerProtocol``s for one ``IStatsReceiver`` (a ``StatsServer``)."""

    protocol = StatsServerProtocol

    def __init__(self, stats_server, *, reactor, max_message_size, ping_interval):
        super().__init__(reactor=reactor, server=SERVER_NAME)
        self.stats_server = stats_server
        self.setProtocolOptions(
            maxFramePayloadSize=max_message_size,
            maxMessagePayloadSize=max_message_size,
            # close with a code (1009 for an oversize message) instead of dropping TCP
            failByDrop=False,
            # a text frame that is not UTF-8 is a bad frame (counted, connection kept, as
            # with Knative's gorilla server), not a protocol error closing with 1007
            utf8validateIncoming=False,
            # unmasked in StatsServerProtocol.onFrameData (a server masks nothing it sends)
            applyMask=False,
            # autobahn's timers (txaio's batched timer) round each deadline down to a
            # whole second, so they fire up to 1 s early: hence the extra second
            autoPingInterval=ping_interval or 0,
            autoPingTimeout=2 * ping_interval + 1 if ping_interval else 0,
            openHandshakeTimeout=10,
            closeHandshakeTimeout=3,
        )
