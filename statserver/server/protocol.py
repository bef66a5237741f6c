"""The autobahn side: one protocol instance per sender connection."""

import autobahn.twisted.websocket
import autobahn.websocket.protocol
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
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
from statserver.server.framing import split_frames, unmask

#: Bytes a connection may have waiting to be sent (pongs, pings, a close: the server
#: sends nothing else) before it is closed with 1008: a peer sending pings and never
#: reading would otherwise grow the buffer by a pong per ping, without bound.
MAX_OUTGOING = 64 * 1024


#: Bytes of a message cut by the end of a read that the fast path keeps until the next
#: read (the message is split again from its start then); a longer one is autobahn's
#: to take in as it comes, without copying it again for every read.
FAST_HOLD_MAX = 256 * 1024


def outgoing_bytes(transport):
    """Bytes a Twisted transport holds that the kernel has not taken yet (0 where the
    transport does not say)."""
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except (AttributeError, TypeError):
        return 0

class _Lazy:
    """``func(*args, **kwargs)``'s text, made only when it is formatted."""

    __slots__ = ("func", "args", "kwargs")

    def __init__(self, func, *args, **kwargs):
        self.func, self.args, self.kwargs = func, args, kwargs

    def __format__(self, spec):
        return format(str(self), spec)

    def __str__(self):
        return str(self.func(*self.args, **self.kwargs))

    __repr__ = __str__


def _lazily(func):
    return lambda *args, **kwargs: _Lazy(func, *args, **kwargs)


# autobahn builds the arguments of its debug log lines whether debug logging is on or
# not: every connection pretty-prints its ~40 options (18 % of the server's CPU while
# 2,000 connections open, benchmarks/README.md), and its connection and handshake steps
# name themselves with hltype/hlval (inspect and click styling, a few µs each; seven
# times a connection). Those names are only ever log arguments there: they become lazy,
# and a line that is logged has the same text.
for _module, _names in (
    (autobahn.websocket.protocol, ("pformat", "hltype", "hlval")),
    (autobahn.twisted.websocket, ("hltype", "hlval")),
):
    for _name in _names:
        if hasattr(_module, _name):  # pragma: no branch - autobahn releases without it
            setattr(_module, _name, _lazily(getattr(_module, _name)))


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
        self._fast_frames = False  # whole data frames skip autobahn's parser (once open)
        self._fast_max_frame = self._fast_max_message = 0

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
        # the fast path takes frames autobahn would hand over unchanged: not with
        # compression, UTF-8 validation, frame logging or timing on
        self._fast_max_frame = max(self.maxFramePayloadSize, 0)
        self._fast_max_message = max(self.maxMessagePayloadSize, 0)
        self._fast_frames = not (
            self._perMessageCompress is not None
            or self.utf8validateIncoming
            or self.logFrames
            or self.logOctets
            or self.trackedTimings
        )
        try:
            self.info = ConnectionInfo(self.peer, int(self.factory.reactor.seconds() * 1e9))
            self.factory.stats_server.connection_opened(self)
        except Exception:
            self._log.failure("Unexpected error opening {peer}", peer=self.peer)

    def dataReceived(self, data):
        # Whole data messages go straight to onMessage (statserver/server/framing.py),
        # with the effects autobahn's parser would have had (its traffic counts, a
        # pending ping timeout cancelled by any data frame). A message cut by the end of
        # the read waits in autobahn's buffer, unparsed, for the next read (up to
        # FAST_HOLD_MAX bytes). Anything else is autobahn's to parse (and it alone judges
        # what is invalid): the rest of a frame it began, and everything from the first
        # byte that does not start a qualifying message. (autobahn's own dataReceived
        # also logs a debug line per read, whose arguments it builds whether debug
        # logging is on or not: it is not logged here.)
        if not self._fast_frames:
            self._dataReceived(data)
            return
        if self.state == self.STATE_OPEN:  # counted once, as autobahn counts a read
            self.trafficStats.incomingOctetsWireLevel += len(data)
        if self.current_frame is not None:  # a frame autobahn began in an earlier read
            rest = self.current_frame.length - self.current_frame_masker.pointer()
            if not 0 <= rest < len(data):
                self._parse(data)
                return
            self._parse(data[:rest])
            data = data[rest:]
        if (
            self.state != self.STATE_OPEN
            or self.current_frame is not None
            or self.inside_message
            or self.failedByMe
        ):
            self._parse(data)
            return
        whole = self.data + data if self.data else data  # a message held, or a cut header
        messages, more = split_frames(whole, self._fast_max_frame, self._fast_max_message)
        end = 0
        if messages:
            self.data = b""
            traffic = self.trafficStats
            for payload, is_binary, message_end, frames in messages:
                end = message_end
                size = len(payload)
                traffic.incomingOctetsWebSocketLevel += size
                traffic.incomingOctetsAppLevel += size
                traffic.incomingWebSocketFrames += frames
                if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
                    self._cancelAutoPingTimeoutCall()
                traffic.incomingWebSocketMessages += 1
                self.onMessage(payload, is_binary)
                if self.state != self.STATE_OPEN or self.failedByMe:
                    more = False  # what follows is autobahn's now
                    break
        if end == len(whole):
            return
        if more and len(whole) - end <= FAST_HOLD_MAX:
            self.data = whole[end:] if end else whole
        elif end:
            self._parse(whole[end:])
        else:
            self._parse(data)  # autobahn's buffer already holds what came before

    def _parse(self, data):
        """autobahn's ``_dataReceived`` less its counting (done once a read above)."""
        self.data += data
        self.consumeData()

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
