"""The aggregator's figures as JSON: ``GET /api/v1/revisions[/{namespace}/{name}]``, and
the open sender connections: ``GET /api/v1/connections``.

Mounted with ``root.putChild(b"api", ApiResource(aggregator, connections=...))``. Every answer is a JSON
object; errors are ``{"error": "..."}`` with a 404 (unknown path or revision) or a 405
(a method other than GET or HEAD).
"""

import json
import math

from twisted.web.resource import Resource

from statserver.model import rfc3339_or_none
from statserver.server.connections import connections_json
from statserver.server.render import SharedRender, serve

_PREFIX = [b"v1", b"revisions"]
_CONNECTIONS = [b"v1", b"connections"]


def _number(value):
    # JSON has no Infinity (sums of huge finite values can overflow): null instead.
    return value if math.isfinite(value) else None


def revision_json(averages):
    """One :class:`statserver.aggregation.aggregator.RevisionAverages` as a JSON-ready dict."""
    return {
        "namespace": averages.namespace,
        "name": averages.name,
        "concurrency": {"stable": _number(averages.stable_concurrency),
                        "panic": _number(averages.panic_concurrency)},
        "rps": {"stable": _number(averages.stable_rps), "panic": _number(averages.panic_rps)},
        "pods": averages.pods,
        "last_stat_time": rfc3339_or_none(averages.last_stat_time),
    }


class ApiResource(Resource):
    """``/api``: ``v1/revisions`` lists every revision with its four averages, pods and
    last stat time; ``v1/revisions/{namespace}/{name}`` gives one; ``v1/connections``
    lists ``connections()`` (``ConnectionInfo``s, as of the aggregator's clock) when given.
    The list of revisions is rendered in slices and shared by the requests of the next
    second (``statserver.server.render``)."""

    isLeaf = True

    def __init__(self, aggregator, connections=None, clock=None):
        super().__init__()
        if clock is None:
            from twisted.internet import reactor as clock
        self.aggregator = aggregator
        self.render_cache = SharedRender(self._list_steps, clock)
        self.connections = connections

    def render(self, request):
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return _error(request, 405, "method not allowed")
        path = list(request.postpath)
        if path and path[-1] == b"":
            path.pop()  # a trailing slash
        if path == _CONNECTIONS and self.connections is not None:
            now_ns = int(self.aggregator.clock.seconds() * 1_000_000_000)
            return _json(request, 200, connections_json(self.connections(), now_ns))
        if path[:2] != _PREFIX or len(path) not in (2, 4):
            return _error(request, 404, "not found; try /api/v1/revisions")
        aggregator = self.aggregator
        if len(path) == 2:
            return serve(request, self.render_cache.body(), b"application/json",
                         [(b"cache-control", b"no-store")])
        try:  # twisted.web has already undone the URL's %-escapes in postpath
            namespace, name = (p.decode("utf-8") for p in path[2:])
        except UnicodeDecodeError:
            return _error(request, 404, "no such revision")
        averages = aggregator.revision(namespace, name)
        if averages is None:
            return _error(request, 404, f"no such revision: {namespace}/{name}")
        return _json(request, 200, revision_json(averages))


    def _list_steps(self, parts):
        """The list's JSON, appended to ``parts`` a slice of revisions at a time."""
        aggregator = self.aggregator
        head = _dumps({
            "stable_window_seconds": aggregator.stable_window // 1_000_000_000,
            "panic_window_seconds": aggregator.panic_window // 1_000_000_000,
            "aggregation": aggregator.aggregation,
        })
        parts.append(head[:-1] + b',"revisions":[')
        first = True
        for chunk in aggregator.revisions_in_slices():
            if chunk:
                items = _dumps([revision_json(r) for r in chunk])[1:-1]
                parts.append(items if first else b"," + items)
                first = False
            yield
        parts.append(b"]}\n")


def _dumps(value):
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _json(request, code, body):
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


def _error(request, code, message):
    return _json(request, code, {"error": message})
