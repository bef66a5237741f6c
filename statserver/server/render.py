"""Bodies that cost much to render (``/metrics``, ``/api/v1/revisions`` at thousands of
revisions): rendered in slices between which the reactor serves everything else, at most
once per ``max_age`` seconds however many requests ask, and sent as the client reads.

A render is a generator that appends bytes to a list and yields between slices of a few
milliseconds of work; a ``Cooperator`` runs it, about 10 ms of slices per reactor turn.
"""

import io

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Cooperator
from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET
from twisted.web.static import NoRangeStaticProducer

from statserver.ratelimit import RateLimit

#: Seconds a rendered body is served again to the requests that follow it.
MAX_AGE = 1.0


class SharedRender:
    """One body at a time from ``steps(parts)`` (a generator function appending the
    body's pieces to ``parts``), shared by every request that comes while it renders and
    by those within ``max_age`` seconds after; ``renders`` counts the renders run."""

    _log = Logger()

    def __init__(self, steps, clock, *, max_age=MAX_AGE):
        self._steps = steps
        self._clock = clock
        self._max_age = max_age
        self._cooperator = Cooperator(scheduler=lambda work: clock.callLater(0, work))
        self._body = None
        self._rendered_at = None
        self._waiting = None  # Deferreds for the render running now
        self._error_log = RateLimit(clock, burst=1, period=60.0)
        self.renders = 0

    def body(self):
        """A Deferred of the body: the cached one while fresh, else the next render's."""
        if self._body is not None and self._clock.seconds() - self._rendered_at < self._max_age:
            return succeed(self._body)
        d = Deferred()
        if self._waiting is None:
            self._waiting = [d]
            self.renders += 1
            parts = []
            task = self._cooperator.cooperate(self._steps(parts))
            task.whenDone().addCallbacks(lambda _: self._done(b"".join(parts)), self._failed)
        else:
            self._waiting.append(d)
        return d

    def _done(self, body):
        self._body, self._rendered_at = body, self._clock.seconds()
        waiting, self._waiting = self._waiting, None
        for d in waiting:
            d.callback(body)

    def _failed(self, failure):
        if self._error_log.allow():
            self._log.failure("Cannot render a response", failure)
        waiting, self._waiting = self._waiting, None
        for d in waiting:
            d.errback(failure)


def serve(request, body, content_type, headers=()):
    """Answer ``request`` with the bytes a Deferred ``body`` fires with (500 if it
    fails), written as the client reads them; returns ``NOT_DONE_YET``."""
    gone = []
    request.notifyFinish().addErrback(gone.append)

    def send(data):
        if gone:
            return
        request.setHeader(b"content-type", content_type)
        for name, value in headers:
            request.setHeader(name, value)
        request.setHeader(b"content-length", b"%d" % len(data))
        if request.method == b"HEAD":
            request.finish()
            return
        # one chunk at a time as the transport drains: a client that pipelines requests
        # and reads nothing holds one body in our buffers, not one per request
        NoRangeStaticProducer(request, io.BytesIO(data)).start()

    def failed(_):
        if gone:
            return
        request.setResponseCode(500)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.write(b"cannot render this response; see the server's log\n")
        request.finish()

    body.addCallbacks(send, failed)
    return NOT_DONE_YET
