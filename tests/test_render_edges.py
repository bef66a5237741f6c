"""A shared render (``statserver.server.render``) that fails, a HEAD request, and a client
gone before its body is ready."""

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from statserver.server.render import SharedRender, serve


def _failing_steps(parts):
    parts.append(b"half a body")
    yield
    raise ValueError("the collector broke")


def _request(method=b"GET"):
    request = DummyRequest([b"metrics"])
    request.method = method
    return request


def test_a_failed_render_answers_500_to_every_request_waiting_and_is_logged_once_a_minute(logged):
    clock = Clock()
    render = SharedRender(_failing_steps, clock)
    requests = [_request(), _request()]
    for request in requests:
        assert serve(request, render.body(), b"text/plain") is NOT_DONE_YET
    assert render.renders == 1  # the second request shares the running render
    clock.advance(0)
    clock.advance(0)
    for request in requests:
        assert request.responseCode == 500 and request.finished
        assert b"".join(request.written) == b"cannot render this response; see the server's log\n"
    assert len(logged.containing("Cannot render a response")) == 1
    # the next failure within the minute is not logged again; it still answers 500
    again = _request()
    serve(again, render.body(), b"text/plain")
    clock.advance(0)
    clock.advance(0)
    assert render.renders == 2 and again.responseCode == 500
    assert len(logged.containing("Cannot render a response")) == 1


def test_head_gets_the_length_and_no_body():
    request = _request(b"HEAD")
    serve(request, succeed(b"x" * 1234), b"text/plain; version=0.0.4",
          headers=[(b"cache-control", b"no-store")])
    assert request.finished
    assert request.written == []
    headers = request.responseHeaders
    assert headers.getRawHeaders(b"content-length") == [b"1234"]
    assert headers.getRawHeaders(b"content-type") == [b"text/plain; version=0.0.4"]
    assert headers.getRawHeaders(b"cache-control") == [b"no-store"]


def test_a_client_gone_before_the_body_is_ready_gets_nothing_written():
    for outcome in ("body", "failure"):
        request = _request()
        body = Deferred()
        serve(request, body, b"text/plain")
        request.processingFailed(Failure(ConnectionError("client went away")))
        if outcome == "body":
            body.callback(b"late")
        else:
            body.errback(ValueError("late failure"))
        assert request.written == [] and not request.finished
        assert request.responseHeaders.getRawHeaders(b"content-type") is None
