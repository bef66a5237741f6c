"""``StatsServer``: Knative's autoscaler stats server as a Twisted service."""

from collections import deque

from autobahn.twisted.resource import WebSocketResource
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, DeferredQueue, maybeDeferred, succeed
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.task import Cooperator, TaskStopped
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site
from zope.interface import implementer

from statserver.constants import CLOSE_MESSAGE_TOO_BIG, NS_PER_S
from statserver.interfaces import IStatsReceiver
from statserver.ratelimit import RateLimit as _RateLimit
from statserver.server.admission import Admission
from statserver.server.channel import FD_RESERVE, HEADER_TIMEOUT, Refusal, RefusalLog, StatsChannel
from statserver.server.lag import ReactorLag
from statserver.server.metrics import ServerMetrics
from statserver.server.protocol import StatsServerFactory
from statserver.server.resources import HealthzResource, MetricsResource, StatsRoot, WebSocketEntry
from statserver.text import printable
from statserver.wire import (
    FORMATS,
    PROTOBUF,
    PROTOBUF_PIECE_BYTES,
    FrameError,
    decode_frame,
    decode_protobuf,
    detect_format,
    protobuf_pieces,
)

#: The default ``max_message_size``: a protobuf frame of 10,000 revisions (the default
#: ``--max-revisions``) with the longest names Kubernetes allows is 4,430,000 bytes
#: (docs/server.md, "Frame sizes"); 5 MiB leaves a sixth more.
MAX_MESSAGE_SIZE = 5 << 20


class StatsQueue(DeferredQueue):
    """An unbounded ``DeferredQueue`` that tells its server whenever a consumer takes.

    Besides ``get`` and ``put`` it moves stats in batches (``put_many``, ``take_all``):
    one call per frame and per consumer wake-up instead of one Deferred per stat.
    """

    def __init__(self, on_get):
        super().__init__()
        self._on_get = on_get

    def get(self):
        d = super().get()
        self._on_get()
        return d

    def put_many(self, objects):
        """``put`` each of ``objects`` (a list), in order."""
        waiting = self.waiting
        if not waiting:
            self.pending.extend(objects)
            return
        for i, obj in enumerate(objects):
            if not waiting:
                self.pending.extend(objects[i:])
                return
            waiting.pop(0).callback(obj)

    def take_all(self, limit=None):
        """Remove and return every pending object, or the oldest ``limit`` (a list,
        oldest first; maybe empty)."""
        taken = self.pending
        if not taken:
            return []
        if limit is not None and len(taken) > limit:
            taken = taken[:limit]
            del self.pending[:limit]
        else:
            self.pending = []
        self._on_get()
        return taken


#: File descriptors left, under the open-files limit, for probes and scrapes beyond the
#: WebSocket connections (the default ``max_connections``).
PROBE_RESERVE = 96


def open_files_limit():
    """The process's soft limit on open files (RLIMIT_NOFILE); None where unknown."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


class StatsSite(Site):
    """A ``Site`` without an access log (kubelet probes and Prometheus scrapes would
    write a line every few seconds for the months the server runs), whose channels are
    ``StatsChannel``s, and which answers 503 past ``max_open`` open connections."""

    noisy = False
    protocol = StatsChannel

    def __init__(self, resource, *, metrics, clock, header_timeout, **kwargs):
        super().__init__(resource, **kwargs)
        self.max_open = None  # set when the server starts (after the limit is raised)
        self.open_connections = 0
        self._header_timeout = header_timeout
        self._refusals = metrics.connections_refused
        self._refusal_log = RefusalLog(clock)

    def log(self, request):
        pass

    def buildProtocol(self, addr):
        if self.max_open is not None and self.open_connections >= self.max_open:
            self.refused("file-descriptors", addr)
            return Refusal()
        channel = super().buildProtocol(addr)
        channel.header_timeout = self._header_timeout
        return channel

    def connection_opened(self):
        self.open_connections += 1

    def connection_closed(self):
        self.open_connections -= 1

    def refused(self, reason, peer, *, log=True):
        """Count (and log, rate-limited) a connection refused or closed by a limit;
        ``peer`` is an address or a transport."""
        self._refusals.labels(reason).inc()
        if log:
            if hasattr(peer, "getPeer"):
                peer = peer.getPeer()
            self._refusal_log.refused(reason, f"{getattr(peer, 'host', peer)}")


@implementer(IStreamServerEndpoint)
class _ReportingEndpoint:
    """``endpoint``, telling ``listened(port)`` or ``failed(failure)`` how its ``listen``
    went. ``StreamServerEndpointService`` keeps the port to itself and logs a failure as
    a traceback; the server wants the port, and one line saying why it cannot listen."""

    def __init__(self, endpoint, listened, failed):
        self.endpoint = endpoint
        self._listened = listened
        self._failed = failed
        self.called = False

    def listen(self, factory):
        self.called = True
        d = maybeDeferred(self.endpoint.listen, factory)
        d.addCallbacks(self._listened, self._failed)
        return d


@implementer(IStatsReceiver)
class StatsServer(MultiService):
    """Receives Knative stats over WebSocket on ``endpoint`` and puts every
    ``StatMessage`` on ``stats``, in frame order per connection.

    Its child ``listener``, a ``StreamServerEndpointService``, binds ``endpoint`` in
    ``privilegedStartService`` (or in ``startService`` when nothing called that first);
    ``listening`` fires with the port, or fails with the reason it could not bind.

    ``queue_size`` bounds the queue by backpressure: at that many pending stats the
    server stops reading every connection, and reads again below half of it. Frames a
    connection had already read are accepted but held undecoded until there is room, so
    the queue exceeds ``queue_size`` by at most one frame's stats; none is ever dropped.

    ``max_connections`` bounds the WebSocket connections (default: the open-files limit
    less :data:`PROBE_RESERVE` and ``FD_RESERVE``); all connections together stay
    ``FD_RESERVE`` below the open-files limit. See ``docs/server.md``.
    """

    _log = Logger()

    def __init__(
        self,
        endpoint,
        *,
        reactor=None,
        queue_size=10000,
        max_message_size=MAX_MESSAGE_SIZE,
        ping_interval=10.0,
        shutdown_timeout=5.0,
        bucket_owners=None,
        max_connections=None,
        header_timeout=HEADER_TIMEOUT,
    ):
        if reactor is None:
            from twisted.internet import reactor
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if max_message_size < 1:
            raise ValueError("max_message_size must be at least 1")
        if ping_interval < 0 or shutdown_timeout < 0:
            raise ValueError("ping_interval and shutdown_timeout must not be negative")
        super().__init__()
        self.endpoint = endpoint
        self.reactor = reactor
        self.queue_size = queue_size
        self.low_water = max(1, (queue_size + 1) // 2)
        self.shutdown_timeout = shutdown_timeout
        self.bucket_owners = bucket_owners
        self.max_connections = max_connections

        self.stats = StatsQueue(self._stat_taken)
        self._held = deque()  # (connection, payload, is_binary, received_at) read while paused
        self.metrics = ServerMetrics()
        self.registry = self.metrics.registry
        self.metrics.queue_depth.set_function(lambda: len(self.stats.pending))
        self.metrics.frames_held.set_function(lambda: len(self._held))
        self._frames = self.metrics.frames.counts
        self._received = self.metrics.stats_received.counts
        self._errors = {f: self.metrics.decode_errors.labels(f) for f in FORMATS}
        self._decode_errors = 0  # all formats: the summary's and dashboard's figure
        self.backpressure_pauses = 0
        self.lag = ReactorLag(reactor, self.registry)
        self._bad_frame_log = _RateLimit(reactor)
        self._admission = Admission(self.registry, _RateLimit(reactor))
        self._oversize_log = _RateLimit(reactor)
        self.max_message_size = max_message_size
        self._pause_log = _RateLimit(reactor, burst=1, period=60.0)

        self.factory = StatsServerFactory(
            self, reactor=reactor, max_message_size=max_message_size, ping_interval=ping_interval
        )
        entry = WebSocketEntry(
            WebSocketResource(self.factory),
            bucket_owners=bucket_owners,
            is_stopping=lambda: self.stopping,
            metrics=self.metrics,
            is_full=self._websockets_full,
            refused=lambda reason, peer: self.site.refused(reason, peer),
            clock=reactor,
        )
        self.metrics_page = MetricsResource(self.registry, clock=reactor)
        self.root = StatsRoot(entry, HealthzResource(lambda: self.stopping), self.metrics_page)
        # idle plain-HTTP connections (probes, scrapes) closed after a minute rather than
        # twisted.web's 12 hours; a WebSocket, once upgraded, is not subject to it
        self.site = StatsSite(
            self.root, metrics=self.metrics, clock=reactor, header_timeout=header_timeout,
            timeout=60, reactor=reactor,
        )

        self.listening = Deferred()
        self.port = None
        self._bind = _ReportingEndpoint(endpoint, self._listened, self._listen_failed)
        self.listener = StreamServerEndpointService(self._bind, self.site)
        self.listener.setServiceParent(self)
        self._privileged = False
        self.stopping = False
        self._stopped = False
        self._stop_waiters = []  # Deferreds of a second stopService, fired with the first
        self.paused = False
        self._resuming = False
        self._connections = set()
        self._connections_gone = []  # Deferreds fired when the last connection closes
        self._queue_drained = []  # Deferreds fired when stats.pending empties while stopping
        # Big protobuf frames are decoded a piece per reactor turn (_slice_frame); while
        # one is, its connection is paused and its later frames wait here, in order.
        self._slicing = {}  # connection -> deque of its frames waiting behind the sliced one
        self._slice_tasks = {}  # connection -> the CooperativeTask slicing its frame
        self._slices_waiting = []  # Deferreds of sliced frames waiting for queue room
        self._slicing_done = []  # Deferreds fired when no frame is being sliced (shutdown)
        self._cooperator = Cooperator(
            terminationPredicateFactory=lambda: _after_one_step,
            scheduler=lambda work: reactor.callLater(0, work),
        )

    # ---- lifecycle ----

    def privilegedStartService(self):
        """Bind the endpoint (``twistd`` calls this before it drops privileges); the
        connection limits follow the open-files limit, raised before by the command."""
        limit = open_files_limit()
        if limit is not None:
            self.site.max_open = max(1, limit - FD_RESERVE)
            if self.max_connections is None:
                self.max_connections = max(1, limit - FD_RESERVE - PROBE_RESERVE)
        self._privileged = True
        super().privilegedStartService()

    def startService(self):
        """Bind the endpoint unless ``privilegedStartService`` did; start serving."""
        if not self._privileged:
            self.privilegedStartService()
        super().startService()
        self.lag.start()

    def _listened(self, port):
        self.port = port
        self.listening.callback(port)
        return port

    def _listen_failed(self, failure):
        # consumed: whoever waits on `listening` says why, in one line (the command:
        # its exit message), where the listener would log a traceback
        self.listening.errback(failure)
        return None

    def stopService(self):
        """Knative's shutdown: stop listening, close every connection with 1012, wait
        (at most ``shutdown_timeout``) for the peers to close and the consumer to take
        what is queued, then drop whatever is left. Never errbacks; a second call fires
        when the first has finished."""
        if self._stopped:
            return succeed(None)
        if self.stopping:
            d = Deferred()
            self._stop_waiters.append(d)
            return d
        Service.stopService(self)  # not MultiService's: the listener stops among the steps
        self.stopping = True
        self.lag.stop()
        self._log.info(
            "Stats server shutting down: {connections} connections, {queued} stats queued",
            connections=len(self._connections),
            queued=len(self.stats.pending),
        )
        self._flush_held()
        waiting, self._slices_waiting = self._slices_waiting, []
        _fire_all(waiting)  # frames being sliced go on whatever the queue holds
        steps = []
        if self._bind.called:  # stop listening, or give up binding
            steps.append(maybeDeferred(self.listener.stopService))
        for conn in list(self._connections):
            conn.close_for_restart()
        if self._connections:
            d = Deferred()
            self._connections_gone.append(d)
            steps.append(d)
        if self._slicing:
            d = Deferred()
            self._slicing_done.append(d)
            steps.append(d.addCallback(lambda _: self._drained()))
        else:
            steps.append(self._drained())
        done = DeferredList(steps, consumeErrors=True)
        timer = self.reactor.callLater(self.shutdown_timeout, done.cancel)

        def finish(_):
            if timer.active():
                timer.cancel()
            else:
                self._log.warn(
                    "Stats server shutdown timed out after {timeout}s: {connections}"
                    " connections dropped, {queued} stats not taken",
                    timeout=self.shutdown_timeout,
                    connections=len(self._connections),
                    queued=len(self.stats.pending),
                )
                self._drop_slicing()
            for conn in list(self._connections):
                try:
                    conn.abort()
                except Exception:
                    self._log.failure("Cannot drop {peer}", peer=conn.peer)
            self._log.info("Stats server stopped")
            self._stopped = True
            waiting, self._stop_waiters = self._stop_waiters, []
            _fire_all(waiting)

        done.addBoth(finish)
        return done

    # ---- what the server holds ----

    @property
    def connections(self):
        """The open sender connections (``IStatsConnection``s), as a tuple."""
        return tuple(self._connections)

    @property
    def frames_held(self):
        """Frames read while paused, waiting undecoded for room in the queue."""
        return len(self._held)

    def connection_infos(self):
        """The ``ConnectionInfo`` of every open sender connection."""
        return [conn.info for conn in self._connections if conn.info is not None]

    def decode_errors_total(self):
        """Frames that failed to decode so far, all formats."""
        return self._decode_errors

    # ---- IStatsReceiver: what StatsServerProtocol tells the server ----

    def connection_opened(self, conn):
        self._connections.add(conn)
        self.metrics.connections.inc()
        self.metrics.connections_opened.inc()
        if self.stopping:
            conn.close_for_restart()
        elif self.paused:
            conn.pause_reading()

    def connection_closed(self, conn):
        if conn in self._connections:
            self._connections.discard(conn)
            self.metrics.connections.dec()
        if getattr(conn, "localCloseCode", None) == CLOSE_MESSAGE_TOO_BIG:
            self.metrics.oversize_closes.inc()
        if not self._connections:
            waiting, self._connections_gone = self._connections_gone, []
            for d in waiting:
                if not d.called:
                    d.callback(None)

    def connection_refused(self, conn, reason):
        self.site.refused(reason, conn.transport)

    def transport_lost(self, conn):
        self.site.connection_closed()  # the TCP connection the site counted

    def message_too_big(self, conn, size):
        limit = self._oversize_log
        if limit.allow():
            held, limit.suppressed = limit.suppressed, 0
            self._log.warn(
                "Closing {peer} with 1009: a message of {size} bytes is over the"
                " {limit} bytes of --max-message-size{held}",
                peer=conn.peer,
                size=size,
                limit=self.max_message_size,
                held=f" ({held} more not logged)" if held else "",
            )

    def frame_received(self, conn, payload, is_binary):
        received_at = int(self.reactor.seconds() * NS_PER_S)
        if conn.restarting:
            # RFC 6455 lets a peer send data until it has read our close (Knative's
            # sender does): those frames are stats like any other.
            self.metrics.frames_after_shutdown.inc()
        if self.stopping:
            self._accept(conn, payload, is_binary, received_at)
            return
        if self.paused or self._held:
            # read before the pause took effect: keep the raw frame (compact) and
            # decode it once the consumer has caught up, after those held before it
            self._held.append((conn, payload, is_binary, received_at))
            return
        self._accept(conn, payload, is_binary, received_at)

    def _accept(self, conn, payload, is_binary, received_at):
        """Decode one frame and queue its stats (a big protobuf frame: in slices)."""
        waiting = self._slicing.get(conn)
        if waiting is not None:  # behind a frame of the same connection being sliced
            waiting.append((conn, payload, is_binary, received_at))
            return
        if len(payload) > PROTOBUF_PIECE_BYTES and detect_format(payload, is_binary) == PROTOBUF:
            self._start_slicing(conn, payload, received_at)
            return
        try:
            fmt, stats = decode_frame(payload, is_binary, received_at)
        except FrameError as e:
            self._bad_frame(conn, e.format, e.reason, received_at)
            return
        except Exception:  # a decoder bug: logged with its traceback, the connection kept
            self._bad_frame(conn, detect_format(payload, is_binary), "decoder bug",
                            received_at, failure=Failure())
            return
        stats = self._admission.admit(stats, conn.peer)
        # count first: a waiting consumer runs inside put_many()
        self._frames[fmt] += 1
        self._received[fmt] += len(stats)
        conn.info.frame(fmt, payload, stats, received_at)
        self.stats.put_many(stats)
        if not self.paused and len(self.stats.pending) >= self.queue_size and not self.stopping:
            self._pause()  # (not while stopping: the peers' close replies must be read)

    def _websockets_full(self):
        return self.max_connections is not None and len(self._connections) >= self.max_connections

    # ---- big frames, a slice per reactor turn ----

    def _start_slicing(self, conn, payload, received_at):
        self._slicing[conn] = deque()
        conn.pause_reading()
        task = self._cooperator.cooperate(self._slice_frame(conn, payload, received_at))
        self._slice_tasks[conn] = task
        task.whenDone().addBoth(self._sliced, conn)

    def _slice_frame(self, conn, payload, received_at):
        """Decode a protobuf frame of more than ``PROTOBUF_PIECE_BYTES``, one step per
        reactor turn: first cut it into pieces (each parsed, so that a bad frame is
        refused whole, as a small one is), then queue each piece's stats, waiting for
        room in the queue whenever it is full."""
        pieces = []
        try:
            for piece in protobuf_pieces(payload):
                pieces.append(piece)
                yield None
        except FrameError as e:
            self._bad_frame(conn, PROTOBUF, e.reason, received_at)
            return
        except Exception:
            self._bad_frame(conn, PROTOBUF, "decoder bug", received_at, failure=Failure())
            return
        payload = pieces[0] if pieces else b""
        self._frames[PROTOBUF] += 1
        first = True
        while pieces:
            while self.paused and not self.stopping:
                room = Deferred()
                self._slices_waiting.append(room)
                yield room
            try:
                stats = decode_protobuf(pieces.pop(0), received_at)
            except Exception:  # each piece parsed once already: a decoder bug
                self._bad_frame(conn, PROTOBUF, "decoder bug", received_at, failure=Failure())
                return
            stats = self._admission.admit(stats, conn.peer)
            self._received[PROTOBUF] += len(stats)
            if first:  # the connection's figures count the frame once, with all its stats
                conn.info.frame(PROTOBUF, payload, stats, received_at)
                first = False
            else:
                conn.info.stats += len(stats)
            self.stats.put_many(stats)
            if (not self.paused and len(self.stats.pending) >= self.queue_size
                    and not self.stopping):
                self._pause()
            yield None

    def _sliced(self, result, conn):
        """A sliced frame is done: go on with the frames its connection sent after it."""
        if isinstance(result, Failure) and not result.check(TaskStopped):
            self._log.failure("Unexpected error decoding a frame from {peer}", result,
                              peer=conn.peer)
        del self._slice_tasks[conn]
        waiting = self._slicing.pop(conn)
        while waiting:
            if conn in self._slicing:  # another big frame: the rest waits behind it
                self._slicing[conn].extend(waiting)
                break
            if self.paused and not self.stopping:
                # ahead of the connection's frames held meanwhile, decoded on resume
                self._held.extendleft(reversed(waiting))
                break
            self._accept(*waiting.popleft())
        if conn not in self._slicing and not self.paused and conn in self._connections:
            conn.resume_reading()
        if not self._slicing:
            done, self._slicing_done = self._slicing_done, []
            _fire_all(done)

    def _bad_frame(self, conn, fmt, reason, received_at, failure=None):
        self._frames[fmt] += 1
        self._errors[fmt].inc()
        self._decode_errors += 1
        conn.info.bad_frame(fmt, received_at)
        if self._bad_frame_log.allow():
            held = self._bad_frame_log.suppressed
            self._bad_frame_log.suppressed = 0
            fields = dict(
                peer=conn.peer,
                reason=printable(reason),
                held=f" ({held} more bad frames not logged)" if held else "",
            )
            if failure is None:
                self._log.warn("Bad frame from {peer}: {reason}{held}", **fields)
            else:
                self._log.failure("Bad frame from {peer}: {reason}{held}", failure, **fields)

    # ---- backpressure ----

    def _pause(self):
        self.paused = True
        self.backpressure_pauses += 1
        self.metrics.backpressure_pauses.inc()
        self.metrics.paused.set(1)
        if self._pause_log.allow():
            self._log.info(
                "Queue full ({queued} stats): pausing {connections} connections (logged"
                " at most once a minute; statserver_backpressure_pauses_total counts all)",
                queued=len(self.stats.pending),
                connections=len(self._connections),
            )
        for conn in self._connections:
            conn.pause_reading()

    def _resume(self):
        """Decode the held frames in arrival order while the queue has room; once none
        is left, read from every connection again."""
        self._resuming = True  # a consumer taking inside put() must not re-enter
        try:
            while self.paused and len(self.stats.pending) < self.low_water:
                self.paused = False
                self.metrics.paused.set(0)
                while self._held and not self.paused:
                    self._accept(*self._held.popleft())
            if not self.paused:
                self._log.debug("Queue below {low}: resuming", low=self.low_water)
                waiting, self._slices_waiting = self._slices_waiting, []
                _fire_all(waiting)
                for conn in list(self._connections):
                    if conn not in self._slicing:
                        conn.resume_reading()
        finally:
            self._resuming = False

    def _flush_held(self):
        """Queue every held frame now (shutdown: they were accepted before it began)."""
        while self._held:
            self._accept(*self._held.popleft())

    def _drop_slicing(self):
        """Shutdown timed out: stop slicing frames, drop the frames waiting behind them."""
        if not self._slicing:
            return
        self._log.warn(
            "Stats server shutdown: {frames} frames of {connections} connections not"
            " decoded in time",
            frames=len(self._slicing) + sum(map(len, self._slicing.values())),
            connections=len(self._slicing),
        )
        for waiting in self._slicing.values():
            waiting.clear()
        for task in list(self._slice_tasks.values()):
            task.stop()

    def _drained(self):
        """A Deferred that fires once the consumer has taken every queued stat."""
        if not self.stats.pending:
            return succeed(None)
        d = Deferred()
        self._queue_drained.append(d)
        return d

    def _stat_taken(self):
        if self.paused and not self._resuming and len(self.stats.pending) < self.low_water:
            self._resume()
        if not self.stats.pending and self._queue_drained:
            # Called while the consumer takes: tell the shutdown on the next turn, once
            # the consumer has recorded what it took (the command then closes the sinks).
            waiting, self._queue_drained = self._queue_drained, []
            self.reactor.callLater(0, _fire_all, waiting)


def _after_one_step():
    # the cooperator's termination predicate: one step of one sliced frame a reactor turn
    return True


def _fire_all(deferreds):
    for d in deferreds:
        if not d.called:
            d.callback(None)
