"""The HTTP side of the server: WebSocket entry, kubelet probes, healthz, metrics."""

from twisted.logger import Logger
from twisted.web.resource import Resource

from statserver import SERVER_NAME
from statserver.ratelimit import RateLimit
from statserver.server import metrics as _metrics
from statserver.server.channel import routing_host
from statserver.server.render import SharedRender, serve

_TEXT = b"text/plain; charset=utf-8"
_SERVER = SERVER_NAME.encode("ascii")


def is_kubelet_probe(request):
    """True for a kubelet's probe: ``User-Agent: kube-probe/...`` or a ``K-Kubelet-Probe``
    header (what Knative's ``network.IsKubeletProbe`` checks)."""
    agent = request.getHeader(b"user-agent") or b""
    return agent.startswith(b"kube-probe/") or bool(request.getHeader(b"k-kubelet-probe"))


def is_websocket_upgrade(request):
    """True when the request asks to upgrade to WebSocket."""
    upgrade = request.getHeader(b"upgrade") or b""
    return b"websocket" in upgrade.lower()


_HTML_TYPES = (b"text/html", b"application/xhtml+xml")


def prefers_html(accept):
    """True when an ``Accept`` header value ranks ``text/html`` (or XHTML) at least as
    high as anything else it lists, with a quality above zero."""
    best_html = best_other = 0.0
    for part in (accept or b"").split(b","):
        media, *params = part.strip().split(b";")
        quality = 1.0
        for param in params:
            key, _, value = param.strip().partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.strip().lower()
        if media in _HTML_TYPES:
            best_html = max(best_html, quality)
        elif media:
            best_other = max(best_other, quality)
    return best_html > 0 and best_html >= best_other


def is_browser_page_request(request):
    """A browser opening a page: GET or HEAD, no ``Upgrade``, ``Accept`` preferring HTML."""
    return (request.method in (b"GET", b"HEAD") and not request.getHeader(b"upgrade")
            and prefers_html(request.getHeader(b"accept")))


class _Text(Resource):
    isLeaf = True

    def __init__(self, code, body):
        super().__init__()
        self.code = code
        self.body = body

    def render(self, request):
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", _TEXT)
        return self.body


PROBE = _Text(200, b"")


class HealthzResource(Resource):
    """``/healthz``: 200 while serving, 503 once ``is_stopping()`` says shutdown began."""

    isLeaf = True

    def __init__(self, is_stopping):
        super().__init__()
        self._is_stopping = is_stopping

    def render_GET(self, request):
        request.setHeader(b"content-type", _TEXT)
        if self._is_stopping():
            request.setResponseCode(503)
            return b"stopping\n"
        return b"ok\n"

    render_HEAD = render_GET


class MetricsResource(Resource):
    """``/metrics``: the Prometheus text exposition of one registry, then of each source
    added with ``add_sliced`` (an object whose ``exposition(parts)`` renders in slices,
    such as ``AggregateCollector``). One render at a time, spread over reactor turns and
    shared by the requests of the next second (``statserver.server.render``)."""

    isLeaf = True

    def __init__(self, registry, clock=None):
        super().__init__()
        if clock is None:
            from twisted.internet import reactor as clock
        self._registry = registry
        self._sliced = []
        self.render_cache = SharedRender(self._steps, clock)

    def add_sliced(self, source):
        """Render ``source.exposition(parts)`` after the registry."""
        self._sliced.append(source)

    def _steps(self, parts):
        parts.append(_metrics.render(self._registry))
        yield
        for source in self._sliced:
            yield from source.exposition(parts)

    def render_GET(self, request):
        return serve(request, self.render_cache.body(),
                     _metrics.CONTENT_TYPE_LATEST.encode("ascii"))

    render_HEAD = render_GET


class WebSocketEntry(Resource):
    """Hands a WebSocket upgrade to autobahn's ``WebSocketResource``; answers a request
    without an upgrade with a short 426, and a bucket host not owned here with 200 and no
    upgrade (Knative's answer, which fails the client's handshake). The bucket is read
    from the request line's authority when it has one, else from ``Host`` (Go's rule);
    past ``is_full()`` (``--max-connections``) an upgrade is answered 503."""

    isLeaf = True
    _log = Logger()

    def __init__(self, websocket_resource, *, bucket_owners=None, is_stopping, metrics,
                 is_full=lambda: False, refused=None, clock=None):
        super().__init__()
        self._websocket = websocket_resource
        self._owners = bucket_owners
        self._is_stopping = is_stopping
        self._metrics = metrics
        self._is_full = is_full
        self._refused = refused
        if clock is None:
            from twisted.internet import reactor as clock
        self._refusal_log = RateLimit(clock, burst=1, period=60.0)

    def render(self, request):
        if not is_websocket_upgrade(request):
            request.setHeader(b"content-type", _TEXT)
            request.setResponseCode(426)
            request.setHeader(b"upgrade", b"websocket")
            return b"426 Upgrade Required: this is Knative's stats WebSocket endpoint\n"
        if self._is_stopping():
            request.setResponseCode(503)
            request.setHeader(b"content-type", _TEXT)
            _close_after(request)
            return b"stopping\n"
        host = routing_host(request)
        if self._owners is not None and not self._owners.owns_host(host):
            if self._refusal_log.allow():
                self._log.warn(
                    "Refusing WebSocket for {host!r}: bucket not owned here (logged at most"
                    " once a minute; statserver_bucket_refusals_total counts all)", host=host)
            self._metrics.bucket_refusals.inc()
            _close_after(request)
            return b""
        if self._is_full():
            if self._refused is not None:
                self._refused("max-connections", request.transport)
            request.setResponseCode(503)
            request.setHeader(b"content-type", _TEXT)
            _close_after(request)
            request.setHeader(b"retry-after", b"1")
            return b"too many connections (--max-connections)\n"
        result = self._websocket.render(request)
        channel = request.channel
        if channel is not None and channel.transport is None:
            # autobahn took the TCP connection over: this request and its HTTP channel are
            # done and hold each other (channel.requests, request.channel). Untied, both go
            # by reference counting alone, which statserver/gcpolicy.py relies on.
            del channel.requests[:]
        return result


def _close_after(request):
    """Say ``Connection: close`` and mean it (twisted.web only closes after a response
    when the request asked to)."""
    request.setHeader(b"connection", b"close")
    channel = getattr(request, "channel", None)
    if channel is not None:
        channel.persistent = False


class StatsRoot(Resource):
    """The root of the tree: a kubelet probe gets 200 on any path; ``healthz`` and
    ``metrics`` (and any child a caller adds) are served; every other path is the
    WebSocket endpoint (Knative's senders ignore the path). When ``browser_page`` is set
    (the dashboard's redirect), a browser's plain ``GET /`` gets it instead."""

    browser_page = None

    def __init__(self, websocket_entry, healthz, metrics):
        super().__init__()
        self._websocket_entry = websocket_entry
        self.putChild(b"healthz", healthz)
        self.putChild(b"metrics", metrics)

    def getChildWithDefault(self, path, request):
        # every response names us rather than twisted.web ("TwistedWeb/x")
        request.setHeader(b"server", _SERVER)
        if is_kubelet_probe(request):
            return PROBE
        if (path == b"" and not request.postpath and self.browser_page is not None
                and is_browser_page_request(request)):
            return self.browser_page
        return super().getChildWithDefault(path, request)

    def getChild(self, path, request):
        return self._websocket_entry

    def render(self, request):
        return self._websocket_entry.render(request)
