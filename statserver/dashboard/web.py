"""The dashboard's HTTP side: ``/dashboard/`` (the page and its assets, shipped in the
package), ``/dashboard/events`` (the snapshots as Server-Sent Events) and
``/dashboard/history`` (the samples of some revisions), all read-only, and the rule that
sends a browser's plain ``GET /`` there."""

import json
from importlib import resources as _package_files
from urllib.parse import parse_qs

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from statserver.server.resources import is_browser_page_request, prefers_html

__all__ = ["DashboardResource", "RedirectToDashboard", "is_browser_page_request", "prefers_html"]

#: No inline script or style, nothing from another origin, no frames, no forms.
CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {
    b"": ("index.html", b"text/html; charset=utf-8"),
    b"index.html": ("index.html", b"text/html; charset=utf-8"),
    b"dashboard.js": ("dashboard.js", b"text/javascript; charset=utf-8"),
    b"dashboard.css": ("dashboard.css", b"text/css; charset=utf-8"),
    b"icon.svg": ("icon.svg", b"image/svg+xml"),
}
#: Most revisions one ``/dashboard/history`` request may ask for.
MAX_HISTORY_REVISIONS = 200
def _secure(request):
    request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY)
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"referrer-policy", b"no-referrer")
    request.setHeader(b"x-frame-options", b"DENY")


class RedirectToDashboard(Resource):
    """``302`` to ``/dashboard/``."""

    isLeaf = True

    def render(self, request):
        request.setResponseCode(302)
        request.setHeader(b"location", b"/dashboard/")
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        _secure(request)
        return b"the dashboard is at /dashboard/\n"


class DashboardResource(Resource):
    """``/dashboard/``: the page, its assets, ``events`` and ``history``; GET and HEAD
    only (405 otherwise), 404 for anything else."""

    isLeaf = True

    def __init__(self, dashboard):
        super().__init__()
        self.dashboard = dashboard
        static = _package_files.files("statserver.dashboard").joinpath("static")
        self._assets = {path: (static.joinpath(name).read_bytes(), kind)
                        for path, (name, kind) in ASSETS.items()}

    def render(self, request):
        _secure(request)
        request.setHeader(b"cache-control", b"no-cache")
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return _text(request, 405, b"the dashboard only reads\n")
        path = request.postpath
        if not path:  # /dashboard without the slash: the page's relative URLs need it
            request.setResponseCode(301)
            request.setHeader(b"location", b"/dashboard/")
            return b""
        if len(path) == 1 and path[0] in self._assets:
            body, kind = self._assets[path[0]]
            request.setHeader(b"content-type", kind)
            return body
        if path == [b"events"]:
            return self._events(request)
        if path == [b"history"]:
            return self._history(request)
        return _text(request, 404, b"not found\n")

    def _events(self, request):
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")  # a proxy in front: do not buffer
        if request.method == b"HEAD":
            return b""
        if not self.dashboard.add_viewer(request):
            return _text(request, 503, b"too many dashboard viewers\n")
        return NOT_DONE_YET

    def _history(self, request):
        """``?ns=N&name=M`` (repeated, paired in order): the samples of those revisions."""
        history = self.dashboard.history
        args = parse_qs(request.uri.partition(b"?")[2].decode("latin-1"),
                        keep_blank_values=True, encoding="utf-8", errors="replace")
        pairs = list(zip(args.get("ns", []), args.get("name", []), strict=False))
        pairs = pairs[:MAX_HISTORY_REVISIONS]
        revisions = []
        for namespace, name in pairs:
            samples = history.revision(namespace, name)
            if samples is not None:
                revisions.append({"namespace": namespace, "name": name, "samples": samples})
        body = {"times": list(history.times), "resolution_seconds": history.resolution,
                "revisions": revisions}
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _text(request, code, body):
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return body
