"""``twist statserver``: the command-line options and the service tree they make.

The tree, in start order (it stops in the reverse order, each child after the previous one
has finished stopping):

1. ``StatsConsumer``: takes every stat from the server's queue and hands it to the sinks
   (``--stats-log``, the per-minute summary);
2. ``StatsServer``: the WebSocket server itself, whose child ``listener`` (a
   ``StreamServerEndpointService``) binds ``--port`` in ``privilegedStartService``;
3. ``SystemdNotifier``: ``READY=1`` once listening, ``WATCHDOG=1``, ``STOPPING=1``.

So on SIGTERM systemd hears ``STOPPING=1`` first, the server closes its connections and
waits for the queue to drain, and only then the consumer writes out the rest and closes the
sinks.
"""

import os
import signal
import sys
import threading

from twisted.application.service import MultiService
from twisted.internet.defer import CancelledError, inlineCallbacks, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ReactorNotRunning
from twisted.logger import Logger
from twisted.python import usage

_log = Logger()

GC_FREEZE = ("survivors", "start")  # --gc-freeze

LONGDESC = """\
Knative Serving's autoscaler stats server. Knative activators (and old queue-proxies) open a
WebSocket to it and push one stat per revision about once a second, in the format of their
release (gob, JSON or protobuf); every stat received goes to the --stats-log file as one JSON
object per line, and a summary line is logged every minute. /healthz and /metrics
(Prometheus, with Knative's stable- and panic-window averages of every revision's
concurrency and requests per second) are served on the same port, and the same averages as
JSON at /api/v1/revisions.

Signals: SIGTERM stops it the way Knative's server stops (close every WebSocket with 1012,
deliver what is queued, exit 0); SIGHUP re-reads --bucket-owners-file and reopens the
--stats-log file (for log rotation).
"""


def _positive_int(options, name):
    text = options[name]
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = 0
    if value <= 0:
        raise usage.UsageError(f"--{name} must be a positive whole number, not {text!r}")
    options[name] = value


def _seconds(options, name, *, zero_ok):
    text = options[name]
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not (value >= 0 if zero_ok else value > 0) or value == float("inf"):
        kind = "zero or more" if zero_ok else "more than zero"
        raise usage.UsageError(f"--{name} must be a number of seconds, {kind}, not {text!r}")
    options[name] = value


def _check_endpoint(description):
    """Parse ``description`` as ``--port`` does; a ``UsageError`` saying why it is wrong."""
    from twisted.internet import reactor
    try:
        endpoint = serverFromString(reactor, description)
    except KeyError as e:
        # systemd:name=... naming a socket systemd did not pass us.
        reason = f"no socket {e} was passed by systemd (LISTEN_FDNAMES)"
    except IndexError:
        reason = "no socket at that index was passed by systemd (LISTEN_FDS)"
    except TypeError:
        reason = "unknown or missing parameter for this endpoint type"
    except Exception as e:  # ValueError mostly; any parse error is a usage error here
        reason = str(e) or type(e).__name__
    else:
        # serverFromString takes any integer as a TCP port; binding 99999 would fail
        # only at start, with status 1 rather than a usage error's 64.
        port = getattr(endpoint, "_port", None)
        if not isinstance(port, int) or 0 <= port <= 65535:
            return endpoint
        reason = f"port {port} is not between 0 and 65535"
    raise usage.UsageError(f"invalid --port {description!r}: {reason}")


#: The listen backlog given to a tcp/tcp6 --port without one: Twisted's default is 50,
#: and a connect storm (thousands of senders redialling after a restart) overflows it
#: (dropped SYNs, 1 s client retries). The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096


def with_backlog(description, backlog=LISTEN_BACKLOG):
    """``description`` with ``:backlog=N`` added when it is a tcp or tcp6 endpoint that
    names none (systemd sockets have systemd's ``Backlog=``)."""
    kind = description.split(":", 1)[0].strip().lower()
    if kind not in ("tcp", "tcp6") or "backlog=" in description:
        return description
    return f"{description}:backlog={backlog}"


class Options(usage.Options):
    """The options of ``twist statserver``."""

    synopsis = "[options]"
    longdesc = LONGDESC

    optParameters = [
        ["queue-size", None, "10000",
         "Stats held for the consumer before every connection is paused (backpressure)."],
        ["max-message-size", None, str(5 << 20),
         "Largest WebSocket message accepted, in bytes (default 5 MiB: 10,000 revisions"
         " of the longest names in one protobuf frame); a larger one is closed with 1009."],
        ["ping-interval", None, "10",
         "Seconds between the server's own WebSocket pings to each client; 0: no pings."],
        ["shutdown-timeout", None, "5",
         "Seconds to close connections and drain the queue on SIGTERM (Knative's is 5)."],
        ["bucket-owners-file", None, None,
         "File naming the buckets this process owns, one a line; re-read on SIGHUP."],
        ["stats-log", None, None,
         "Write every stat received to this file, one JSON object per line ('-' for stdout)."],
        ["stable-window", None, "60",
         "Stable window of the per-revision averages, whole seconds from 6 to 3600."],
        ["panic-window-percentage", None, "10",
         "Panic window as a percentage (1 to 100) of the stable window."],
        ["aggregation", None, "linear",
         "Window averaging: linear or weighted-exponential (Knative's two algorithms)."],
        ["max-revisions", None, "10000",
         "Most revisions averaged at once; stats of further revisions are counted and refused."],
        ["max-connections", None, None,
         "Most WebSocket connections at once; past it an upgrade is answered 503. "
         "[default: the open-files limit less 128]"],
        ["max-clock-skew", None, "5",
         "Seconds a sender's timestamp may be ahead of or behind the receive time; a stat"
         " beyond it is averaged at its receive time (and counted)."],
        ["history-length", None, "300",
         "Seconds of history the dashboard's charts keep (0: none), a multiple of --history-resolution."],
        ["history-resolution", None, "5",
         "Seconds between two samples of the dashboard's history."],
        ["gc-freeze", None, "survivors",
         "What the garbage collector stops scanning: 'survivors' of each full collection,"
         " or only what the imports made at 'start' (docs/server.md)."],
    ]

    optFlags = [
        ["no-dashboard", None, "Serve no dashboard (/dashboard/ and its redirect of / are gone)."],
    ]

    def __init__(self):
        super().__init__()
        self["port"] = "tcp:8080"
        self["bucket-owner"] = []
        self._ports_given = 0
        self._parse_failed = False

    def parseOptions(self, options=None):
        try:
            super().parseOptions(options)
        except usage.UsageError:
            self._parse_failed = True
            raise

    def getUsage(self, width=None):
        # twist answers a bad option with "Error: <why>" followed by this usage text: keep
        # that to the one line that says what is wrong (--help still prints the usage).
        if self._parse_failed:
            return ""
        return super().getUsage(width=width)

    def opt_port(self, description):
        """Endpoint to listen on, a Twisted endpoint description (tcp:8080, tcp6:8080 for IPv6 and IPv4, systemd:domain=INET6:name=statserver.socket); give it once. [default: tcp:8080]"""
        self._ports_given += 1
        if self._ports_given > 1:
            raise usage.UsageError("give --port once (one listening endpoint per process)")
        self["port"] = description

    opt_p = opt_port

    def opt_version(self):
        """Print statserver's version (and its main dependencies') and exit."""
        print(version_line())
        sys.exit(0)

    def opt_bucket_owner(self, name):
        """A bucket this process owns (Knative HA, e.g. autoscaler-bucket-00-of-02); repeat for more. Without any, every bucket is served."""
        if not name.strip():
            raise usage.UsageError("--bucket-owner needs a bucket name")
        self["bucket-owner"].append(name.strip())

    def postOptions(self):
        for name in ("queue-size", "max-message-size"):
            _positive_int(self, name)
        _seconds(self, "ping-interval", zero_ok=True)
        _seconds(self, "shutdown-timeout", zero_ok=True)
        if self["max-connections"] is not None:
            _positive_int(self, "max-connections")
        _check_endpoint(self["port"])
        _check_aggregation_options(self)
        if self["gc-freeze"] not in GC_FREEZE:
            raise usage.UsageError(
                f"--gc-freeze must be {' or '.join(GC_FREEZE)}, not {self['gc-freeze']!r}")
        from statserver.dashboard.history import check_history

        try:
            self["history-length"], self["history-resolution"] = check_history(
                self["history-length"], self["history-resolution"])
        except ValueError as e:
            raise usage.UsageError(f"invalid --history-length/--history-resolution: {e}") from None
        path = self["bucket-owners-file"]
        if path is not None:
            try:
                with open(path, encoding="utf-8") as f:
                    f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise usage.UsageError(f"cannot read --bucket-owners-file {path!r}: {_why(e)}") from None
        path = self["stats-log"]
        if path is not None and path != "-":
            try:
                open(path, "a", encoding="utf-8").close()
            except OSError as e:
                raise usage.UsageError(f"cannot write --stats-log {path!r}: {_why(e)}") from None


def version_line():
    """``statserver 0.2.0 (Twisted 26.10.0, autobahn 26.11.1, Python 3.11.7)``."""
    import platform

    import autobahn

    import twisted
    from statserver import __version__

    return (f"statserver {__version__} (Twisted {twisted.__version__}, "
            f"autobahn {autobahn.__version__}, Python {platform.python_version()})")


def _why(error):
    return getattr(error, "strerror", None) or str(error)


def _check_aggregation_options(options):
    """Validate the windowed-aggregation options as Knative does."""
    from statserver.aggregation import aggregator

    for name, check in (("stable-window", aggregator.check_stable_window),
                        ("panic-window-percentage", aggregator.check_panic_window_percentage),
                        ("aggregation", aggregator.check_aggregation),
                        ("max-revisions", aggregator.check_max_revisions),
                        ("max-clock-skew", aggregator.check_max_clock_skew)):
        try:
            options[name] = check(options[name])
        except ValueError as e:
            raise usage.UsageError(f"invalid --{name}: {e}") from None


def makeService(options, reactor=None):
    """The service tree for parsed ``options`` (see the module's docstring)."""
    if reactor is None:
        from twisted.internet import reactor
    from statserver.bucket_owners import BucketOwners
    from statserver.server.service import StatsServer
    from statserver.sinks.statslog import StatsLog
    from statserver.sinks.summary import Summary

    _log_priorities_for_journald(options)
    bucket_owners = None
    if options["bucket-owner"] or options["bucket-owners-file"]:
        bucket_owners = BucketOwners(
            names=options["bucket-owner"], path=options["bucket-owners-file"]
        )
    server = StatsServer(
        serverFromString(reactor, with_backlog(options["port"])),
        reactor=reactor,
        queue_size=options["queue-size"],
        max_message_size=options["max-message-size"],
        ping_interval=options["ping-interval"],
        shutdown_timeout=options["shutdown-timeout"],
        bucket_owners=bucket_owners,
        max_connections=options.get("max-connections"),
    )
    # Every stat goes to each sink in this order. A new output is a sink here (and, if it
    # serves HTTP, a child of server.root, e.g. server.root.putChild(b"api", ...)).
    sinks = [Summary(reactor=reactor, decode_errors=server.decode_errors_total)]
    if options["stats-log"] is not None:
        sinks.append(StatsLog(options["stats-log"], reactor=reactor, registry=server.registry))
    aggregator = _aggregator(options, server, reactor)
    sinks.append(aggregator)
    service = StatserverService(
        server,
        sinks,
        port_description=options["port"],
        bucket_owners=bucket_owners,
        reactor=reactor,
        gc_freeze=options["gc-freeze"],
    )
    if not options.get("no-dashboard"):
        from statserver.dashboard import install
        from statserver.dashboard.history import History

        history = History(options.get("history-length", 300), options.get("history-resolution", 5))
        # added last, so stopped first: the event streams end before the server stops
        install(server, aggregator, reactor=reactor, history=history).setServiceParent(service)
    return service


def _log_priorities_for_journald(options):
    """When twist's text log goes to the journal, have each line carry its level
    (``statserver.journald``). ``twist`` starts logging after ``makeService``, with the
    observer factory of its own options, the parent of ours."""
    from twisted.logger import textFileLogObserver

    from statserver.journald import is_journal_stream, journald_text_observer

    twist = getattr(options, "parent", None)
    if twist is None or twist.get("fileLogObserverFactory") is not textFileLogObserver:
        return
    if is_journal_stream(twist.get("logFile")):
        twist["fileLogObserverFactory"] = journald_text_observer


def _aggregator(options, server, reactor):
    """The per-revision windowed averages: a sink, on /metrics and at /api."""
    from statserver.aggregation.aggregator import DEFAULT_MAX_CLOCK_SKEW, Aggregator
    from statserver.aggregation.api import ApiResource
    from statserver.aggregation.collector import AggregateCollector

    aggregator = Aggregator(
        reactor,
        stable_window=options.get("stable-window", 60),
        panic_window_percentage=options.get("panic-window-percentage", 10.0),
        aggregation=options.get("aggregation", "linear"),
        max_revisions=options.get("max-revisions", 10000),
        max_clock_skew=options.get("max-clock-skew", DEFAULT_MAX_CLOCK_SKEW),
    )
    # rendered in slices by /metrics, not in server.registry (whose other readers, such
    # as the summary's decode-error count, would each compute every revision's averages)
    server.metrics_page.add_sliced(AggregateCollector(aggregator))
    server.root.putChild(b"api", ApiResource(aggregator, connections=server.connection_infos,
                                             clock=reactor))
    return aggregator


def _log_implementation():
    from statserver.constants import PURE_ENV
    from statserver.wire import IMPLEMENTATION

    if IMPLEMENTATION == "compiled":
        why = "statserver._speedups: frames, protobuf, gob, admission, aggregation, summary"
    elif os.environ.get(PURE_ENV) == "1":
        why = f"{PURE_ENV}=1"
    else:
        why = "statserver._speedups is not built"
    _log.info("statserver implementation: {implementation} ({why})",
              implementation=IMPLEMENTATION, why=why)


class StatserverService(MultiService):
    """The running command: consumer, server and systemd notifier (in start order).

    It also raises the open-files limit before binding, logs where it listens, makes a failed
    bind end the command with a non-zero status, and handles SIGTERM (exit 0 after a clean
    stop rather than dying of the signal, as ``twist`` would) and SIGHUP while it runs.
    While it runs, the garbage collector freezes what survives its full collections
    (``gc_freeze``: ``"survivors"``, or ``"start"`` for only the imports;
    ``statserver.gcpolicy``) and a reactor turn handles at most 100 I/O events
    (``statserver.turns``).
    """

    def __init__(
        self,
        server,
        sinks,
        *,
        port_description="",
        bucket_owners=None,
        reactor=None,
        environ=None,
        handle_signals=True,
        exit=None,
        gc_freeze="survivors",
    ):
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        from statserver.sinks.consumer import StatsConsumer
        from statserver.systemd import SystemdNotifier

        self._reactor = reactor
        self.server = server
        self.sinks = list(sinks)
        self.port_description = port_description
        self.bucket_owners = bucket_owners
        self.consumer = StatsConsumer(server.stats, self.sinks, registry=server.registry,
                                      clock=reactor)
        self.notifier = SystemdNotifier(reactor=reactor, environ=environ)
        self.consumer.setServiceParent(self)
        server.setServiceParent(self)
        self.notifier.setServiceParent(self)
        self.listen_error = None
        self._privileged = False
        self._starting = False
        self._exit_at_start = False
        self._handle_signals = handle_signals
        self._previous_handlers = {}
        self._exit = _exit_now if exit is None else exit
        from statserver.gcpolicy import FreezeSurvivors

        self.gc_freeze = gc_freeze
        self._uncap_turns = None
        self.gc_policy = FreezeSurvivors(registry=server.registry)

    def privilegedStartService(self):
        """Raise the open-files limit, then bind (the server's listener)."""
        from statserver.systemd import raise_open_files_limit

        self._privileged = True
        raise_open_files_limit()
        super().privilegedStartService()

    def startService(self):
        if not self._privileged:  # twist calls only startService
            self.privilegedStartService()
        _log_implementation()
        # The objects of every module imported so far live as long as the process: out of
        # the cyclic collector's sight, a full collection scans only what the server makes
        # (about 50,000 objects fewer: 25 ms less of every full collection); with
        # "survivors", what outlives each full collection joins them (docs/server.md).
        self.gc_policy.start(after_full_collections=self.gc_freeze == "survivors")
        from statserver.turns import limit_events_per_turn

        self._uncap_turns = limit_events_per_turn(self._reactor)
        super().startService()
        if self._handle_signals:
            self._reactor.callWhenRunning(self._install_signal_handlers)
        self._starting = True
        self.server.listening.addCallbacks(self._listening, self._listen_failed)
        self._starting = False
        if self._exit_at_start:
            # twist starts the services before it runs the reactor, so a bind error is
            # known here: end the command now with one line on stderr and status 1.
            raise SystemExit(f"statserver: {self.listen_error}")

    def _listening(self, port):
        address = port.getHost()
        where = f"{getattr(address, 'host', '')}:{getattr(address, 'port', '')}"
        _log.info(
            "statserver listening on {where} ({description})",
            where=where,
            description=self.port_description,
            host=getattr(address, "host", None),
            port=getattr(address, "port", None),
        )
        # Ready once the reactor runs with our signal handlers: systemd may send SIGTERM
        # as soon as it hears READY=1.
        self._reactor.callWhenRunning(self.notifier.ready, status=f"listening on {where}")
        return port

    def _listen_failed(self, failure):
        if failure.check(CancelledError):  # stopped before the endpoint was bound
            return None
        self.listen_error = f"cannot listen on {self.port_description}: {failure.getErrorMessage()}"
        if self._starting and not self._reactor.running:
            self._exit_at_start = True
        else:
            # Only endpoints that listen asynchronously get here under twist: stop
            # everything and leave with status 1 once the reactor has shut down.
            _log.critical("statserver: {error}", error=self.listen_error)
            self._reactor.addSystemEventTrigger("after", "shutdown", self._exit, 1)
            _stop_reactor(self._reactor)

    @inlineCallbacks
    def stopService(self):
        # Not MultiService's: each child stops only once the one started after it has
        # finished, so the consumer drains the queue after the server has stopped filling it.
        self.running = 0
        for child in reversed(list(self)):
            try:
                yield maybeDeferred(child.stopService)
            except Exception:
                _log.failure("while stopping {child!r}", child=child)
        self.gc_policy.stop()
        if self._uncap_turns is not None:
            self._uncap_turns()
            self._uncap_turns = None
        self._restore_signal_handlers()

    def _install_signal_handlers(self):
        if not self.running or threading.current_thread() is not threading.main_thread():
            return
        for name, handler in (("SIGTERM", self._on_sigterm), ("SIGHUP", self._on_sighup)):
            number = getattr(signal, name, None)
            if number is not None:  # pragma: no branch - Windows has no SIGHUP
                self._previous_handlers[number] = signal.signal(number, handler)

    def _restore_signal_handlers(self):
        while self._previous_handlers:
            number, handler = self._previous_handlers.popitem()
            signal.signal(number, handler)

    def _on_sigterm(self, number, frame):
        self._reactor.callFromThread(_log.info, "Received SIGTERM, shutting down.")
        self._reactor.callFromThread(_stop_reactor, self._reactor)

    def _on_sighup(self, number, frame):
        self._reactor.callFromThread(self.reload)

    def reload(self):
        """What SIGHUP does: re-read the bucket owners file, reopen the stats log."""
        _log.info("reloading: bucket owners file and stats log")
        if self.bucket_owners is not None and getattr(self.bucket_owners, "path", None):
            self.bucket_owners.reload()
        for sink in self.sinks:
            try:
                sink.reopen()
            except Exception:
                _log.failure("while reopening {sink}", sink=sink.name)


def _stop_reactor(reactor):
    try:
        reactor.stop()
    except ReactorNotRunning:
        pass


def _exit_now(status):
    """Leave the process with ``status`` after the reactor has shut down (``twist`` itself
    would exit 0)."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)
