"""The HTTP side's limits: twisted.web's ``HTTPChannel`` with what a hostile client must
not be able to do to it (see "Limits and hostile input" in ``docs/server.md``).

- A request's headers (and so a WebSocket's opening handshake, which twisted.web parses
  before autobahn answers it) must arrive within ``header_timeout`` seconds of the
  connection opening or of the request's first byte: the idle timeout alone restarts with
  every byte, so a client sending a byte every few seconds would hold its fd forever.
- Nothing here takes a request body: a request announcing one (``Content-Length`` above 0
  or ``Transfer-Encoding``) is answered 413 before any of it is read.
- Two ``Host`` headers are a 400, as in Go's net/http (they could route the request to a
  bucket the server does not own).
- Past ``max_open`` connections (a bound derived from the open-files limit) a new
  connection is answered 503 and closed without reading, rather than the process
  running out of file descriptors.
"""

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.http import HTTPChannel

from statserver.ratelimit import RateLimit

#: Seconds a request has to send its headers (Go's ReadHeaderTimeout, which Knative's
#: server does not set; 10 s is ample for a sender on a cluster network).
HEADER_TIMEOUT = 10.0
#: File descriptors kept free of connections (log files, the listening socket, the
#: stats log, DNS, ...).
FD_RESERVE = 32

_RESPONSE = (
    b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
)


def simple_response(code, phrase, body):
    """A complete HTTP/1.1 response that closes the connection, as bytes."""
    return _RESPONSE % (code, phrase, len(body), body)


def routing_host(request):
    """The host a request is for, as Go's net/http decides it: the authority of an
    absolute-URI request line (``GET http://host/path``) wins over ``Host``."""
    uri = request.uri
    if b"://" in uri[:16] and not uri.startswith(b"/"):
        authority = uri.split(b"://", 1)[1]
        for end in (b"/", b"?", b"#"):
            authority = authority.split(end, 1)[0]
        host = authority.rsplit(b"@", 1)[-1]
    else:
        host = request.getHeader(b"host") or b""
    return host.decode("latin-1")


class StatsChannel(HTTPChannel):
    """One HTTP connection (until autobahn takes it over for a WebSocket). Its ``site``
    is a ``StatsSite``, which counts the connections open."""

    _log = Logger()
    header_timeout = HEADER_TIMEOUT
    _header_call = None
    _refused = False

    def connectionMade(self):
        super().connectionMade()
        self.site.connection_opened()
        self._start_header_deadline()

    def _start_header_deadline(self):
        if self.header_timeout and self._header_call is None:
            self._header_call = self.callLater(self.header_timeout, self._headers_too_slow)

    def _stop_header_deadline(self):
        if self._header_call is not None:  # pending: it sets this to None when it fires
            self._header_call.cancel()
            self._header_call = None

    def dataReceived(self, data):
        if self._refused:
            return
        if not self._handlingRequest and self._header_call is None:
            # the first byte of a request on a kept-alive connection
            self._start_header_deadline()
        super().dataReceived(data)

    def _headers_too_slow(self):
        self._header_call = None
        self.site.refused("header-timeout", self.transport)
        self._refuse(408, b"Request Timeout", b"request headers too slow\n")

    def _refuse(self, code, phrase, body):
        """Answer ``code`` and close, reading nothing more."""
        self._refused = True
        # HTTPChannel then goes to raw mode (length not 0), where nothing is read
        self._transferDecoder, self.length = None, None
        self._stop_header_deadline()
        self.setTimeout(None)
        self.transport.write(simple_response(code, phrase, body))
        self.loseConnection()
        # a peer that does not read our answer does not keep the fd either
        self._abortingCall = self.callLater(self.abortTimeout or 15, self.forceAbortClient)

    def rawDataReceived(self, data):
        if not self._refused:
            super().rawDataReceived(data)

    def allHeadersReceived(self):
        self._stop_header_deadline()
        request = self.requests[-1]
        if len(request.requestHeaders.getRawHeaders(b"host") or ()) > 1:
            self.site.refused("duplicate-host", self.transport)
            self._refuse(400, b"Bad Request", b"too many Host headers\n")
            return
        if self._transferDecoder is not None and (self.length is None or self.length > 0):
            self.site.refused("request-body", self.transport)
            self._refuse(413, b"Content Too Large", b"no request here takes a body\n")
            return
        super().allHeadersReceived()

    def timeoutConnection(self):
        # twisted.web logs one line per idle client: a line any peer can cause at will
        self.site.refused("idle-timeout", self.transport, log=False)
        if self.abortTimeout is not None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    def forceAbortClient(self):
        self._abortingCall = None
        if self.transport is not None:
            self.transport.abortConnection()

    def connectionLost(self, reason):
        self._stop_header_deadline()
        if self._abortingCall is not None and self._abortingCall.active():
            self._abortingCall.cancel()
        self._abortingCall = None
        super().connectionLost(reason)
        # (not called once autobahn has taken the transport over: its protocol's is)
        self.site.connection_closed()


class Refusal(Protocol):
    """What a connection past the open-connections bound gets: a 503, then the close."""

    def connectionMade(self):
        self.transport.write(
            simple_response(503, b"Service Unavailable", b"too many connections\n")
        )
        self.transport.loseConnection()


class RefusalLog:
    """One rate-limited log line per kind of refusal (``reason``), with a peer."""

    _log = Logger()

    def __init__(self, clock):
        self._limit = RateLimit(clock, burst=1, period=60.0)

    def refused(self, reason, peer):
        if self._limit.allow():
            held = self._limit.take_suppressed()
            self._log.info(
                "Refused a connection from {peer}: {reason} (logged at most once a minute;"
                " {held} more since; statserver_connections_refused_total counts all)",
                peer=peer,
                reason=reason,
                held=held,
            )
