"""``twist statserver``'s options and the service tree ``makeService`` builds."""

import gc
import json
import signal

import pytest
import pytest_twisted
from closingsink import ClosingSink
from memoryreactor import MemoryReactor
from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import CannotListenError
from twisted.python.usage import UsageError
from wsclient import JSON_FRAME, bounded, connect

from statserver.dashboard import Dashboard
from statserver.dashboard.web import DashboardResource
from statserver.model import StatMessage
from statserver.server.service import StatsServer
from statserver.sinks.base import Sink
from statserver.sinks.consumer import StatsConsumer
from statserver.sinks.statslog import StatsLog
from statserver.sinks.summary import Summary
from statserver.systemd import SystemdNotifier
from statserver.tap import Options, StatserverService, makeService


def parse(*args):
    options = Options()
    options.parseOptions(list(args))
    return options


def test_defaults():
    options = parse()
    assert options["port"] == "tcp:8080"
    assert options["queue-size"] == 10000
    assert options["max-message-size"] == 5 << 20
    assert options["ping-interval"] == 10.0
    assert options["shutdown-timeout"] == 5.0
    assert options["bucket-owner"] == []
    assert options["bucket-owners-file"] is None
    assert options["stats-log"] is None
    assert options["max-connections"] is None  # derived from the open-files limit at start
    assert options["max-clock-skew"] == 5.0


def test_max_clock_skew_reaches_the_aggregator():
    from statserver.aggregation.aggregator import Aggregator

    service = makeService(parse("--port", "tcp:0:interface=127.0.0.1",
                                "--max-clock-skew", "0.25"))
    [aggregator] = [s for s in service.sinks if isinstance(s, Aggregator)]
    assert aggregator.max_clock_skew == 0.25


def test_every_option(tmp_path):
    owners = tmp_path / "owners"
    owners.write_text("autoscaler-bucket-00-of-02\n")
    log = tmp_path / "stats.jsonl"
    options = parse(
        "--port", "tcp:0:interface=127.0.0.1",
        "--queue-size", "50",
        "--max-message-size", "4096",
        "--ping-interval", "2.5",
        "--shutdown-timeout", "0",
        "--bucket-owner", "autoscaler-bucket-01-of-02",
        "--bucket-owner", "autoscaler-bucket-02-of-02",
        "--bucket-owners-file", str(owners),
        "--stats-log", str(log),
        "--max-connections", "300",
    )  # fmt: skip
    assert options["max-connections"] == 300
    assert options["port"] == "tcp:0:interface=127.0.0.1"
    assert options["queue-size"] == 50
    assert options["max-message-size"] == 4096
    assert options["ping-interval"] == 2.5
    assert options["shutdown-timeout"] == 0.0
    assert options["bucket-owner"] == ["autoscaler-bucket-01-of-02", "autoscaler-bucket-02-of-02"]
    assert options["bucket-owners-file"] == str(owners)
    assert options["stats-log"] == str(log)
    assert log.exists()  # checked by opening it for appending


@pytest.mark.parametrize(
    "args,words",
    [
        (["--port", "nosuchtype:1"], ["--port", "nosuchtype:1", "Unknown endpoint type"]),
        (["--port", "tcp:eighty"], ["--port", "tcp:eighty"]),
        (["--port", "tcp:80:colour=blue"], ["--port", "unknown or missing parameter"]),
        (["--port", "systemd:domain=INET6:name=nope.socket"], ["--port", "systemd"]),
        (["--port", "tcp:1", "--port", "tcp:2"], ["--port", "once"]),
        (["--queue-size", "0"], ["--queue-size", "positive"]),
        (["--queue-size", "-5"], ["--queue-size", "-5"]),
        (["--queue-size", "many"], ["--queue-size", "many"]),
        (["--max-message-size", "-1"], ["--max-message-size", "positive"]),
        (["--max-message-size", "1.5"], ["--max-message-size"]),
        (["--ping-interval", "-1"], ["--ping-interval", "zero or more"]),
        (["--port", "tcp:99999"], ["--port", "tcp:99999", "65535"]),
        (["--port", "tcp6:-1"], ["--port", "65535"]),
        (["--ping-interval", "nan"], ["--ping-interval"]),
        (["--shutdown-timeout", "-1"], ["--shutdown-timeout", "zero or more"]),
        (["--shutdown-timeout", "inf"], ["--shutdown-timeout"]),
        (["--bucket-owner", " "], ["--bucket-owner"]),
        (["--bucket-owners-file", "/nonexistent/owners"], ["--bucket-owners-file", "No such file"]),
        (["--stats-log", "/nonexistent/dir/stats.jsonl"], ["--stats-log", "No such file"]),
        (["--stats-log", "/"], ["--stats-log", "directory"]),
        (["--max-connections", "0"], ["--max-connections", "positive"]),
        (["--max-clock-skew", "-1"], ["--max-clock-skew", ">= 0"]),
        (["--max-clock-skew", "inf"], ["--max-clock-skew"]),
        (["--max-clock-skew", "soon"], ["--max-clock-skew", "soon"]),
    ],
)
def test_bad_options_say_why_in_one_line(args, words):
    with pytest.raises(UsageError) as e:
        parse(*args)
    message = str(e.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_usage_after_a_bad_option_is_left_to_the_error_line():
    options = Options()
    assert "--stats-log" in options.getUsage()
    with pytest.raises(UsageError):
        options.parseOptions(["--queue-size", "0"])
    assert options.getUsage() == ""


def test_make_service_builds_the_tree(tmp_path):
    owners = tmp_path / "owners"
    owners.write_text("autoscaler-bucket-00-of-02\n")
    options = parse(
        "--port", "tcp:0:interface=127.0.0.1",
        "--queue-size", "7",
        "--shutdown-timeout", "1.5",
        "--bucket-owner", "autoscaler-bucket-01-of-02",
        "--bucket-owners-file", str(owners),
        "--stats-log", str(tmp_path / "stats.jsonl"),
    )  # fmt: skip
    service = makeService(options, reactor=reactor)
    assert isinstance(service, MultiService)
    children = list(service)
    # Started in this order, stopped in the reverse one (the dashboard's event streams
    # end first).
    assert [type(c) for c in children] == [StatsConsumer, StatsServer, SystemdNotifier,
                                           Dashboard]
    server = service.server
    assert server.queue_size == 7
    assert server.shutdown_timeout == 1.5
    assert server.bucket_owners.owns_host("autoscaler-bucket-00-of-02.knative-serving")
    assert server.bucket_owners.owns_host("autoscaler-bucket-01-of-02.knative-serving")
    assert not server.bucket_owners.owns_host("autoscaler-bucket-02-of-02.knative-serving")
    assert service.consumer.queue is server.stats
    kinds = [type(s) for s in service.sinks]
    assert kinds.count(Summary) == 1 and kinds.count(StatsLog) == 1
    assert children[3].aggregator in service.sinks
    assert isinstance(server.root.children[b"dashboard"], DashboardResource)
    no_dashboard = makeService(parse("--port", "tcp:0:interface=127.0.0.1", "--no-dashboard"),
                               reactor=reactor)
    assert Dashboard not in [type(c) for c in no_dashboard]
    assert b"dashboard" not in no_dashboard.server.root.children
    assert no_dashboard.server.root.browser_page is None
    # the default max-connections is derived from the open-files limit once started
    assert server.max_connections is None


def test_no_stats_log_no_bucket_owners():
    service = makeService(parse("--port", "tcp:0:interface=127.0.0.1"), reactor=reactor)
    kinds = [type(s) for s in service.sinks]
    assert Summary in kinds and StatsLog not in kinds
    assert service.server.bucket_owners is None


class _Arrival(Sink):
    """A sink that fires ``arrived`` with the first stat it is given."""

    def __init__(self):
        self.arrived = Deferred()

    def record(self, stat):
        if not self.arrived.called:
            self.arrived.callback(stat)


@pytest_twisted.ensureDeferred
async def test_the_command_logs_listening_once(logged):
    service = makeService(
        parse("--port", "tcp:0:interface=127.0.0.1"), reactor=reactor)
    service.startService()
    try:
        port = (await bounded(service.server.listening)).getHost().port
    finally:
        await bounded(service.stopService())
    [line] = logged.containing("listening")
    assert line == f"statserver listening on 127.0.0.1:{port} (tcp:0:interface=127.0.0.1)"


@pytest_twisted.ensureDeferred
async def test_stat_reaches_the_stats_log_by_shutdown(tmp_path):
    log = tmp_path / "stats.jsonl"
    options = parse("--port", "tcp:0:interface=127.0.0.1", "--stats-log", str(log))
    service = makeService(options, reactor=reactor)
    arrival = _Arrival()
    service.consumer.sinks.append(arrival)
    before = signal.getsignal(signal.SIGHUP)
    gc.unfreeze()
    service.startService()
    # what the imports made is kept out of every full collection (docs/server.md)
    assert gc.get_freeze_count() > 10_000
    try:
        port = await bounded(service.server.listening)
        assert signal.getsignal(signal.SIGHUP) != before  # the command's handler
        client = await connect(port.getHost().port)
        client.sendMessage(JSON_FRAME.encode(), isBinary=False)
        await bounded(arrival.arrived)
    finally:
        # At once: the line is still in the stats log's buffer; stopping writes it.
        await bounded(service.stopService())
    assert (await bounded(client.closed))[1] == 1012
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["namespace"] == "ns-1"
    assert record["name"] == "rev-1"
    assert record["pod_name"] == "activator-1"
    assert record["average_concurrent_requests"] == 1.5
    assert record["request_count"] == 3
    assert record["timestamp"] is None
    assert record["received_at"].endswith("Z")
    assert signal.getsignal(signal.SIGHUP) == before


@pytest_twisted.ensureDeferred
async def test_stats_queued_when_shutdown_begins_reach_the_sinks_before_they_close():
    options = parse("--port", "tcp:0:interface=127.0.0.1")
    service = makeService(options, reactor=reactor)
    sink = ClosingSink()
    service.consumer.sinks.append(sink)
    service.startService()
    try:
        await bounded(service.server.listening)
        # Stats of frames decoded in the same reactor turn as SIGTERM: the shutdown
        # waits for the consumer, which takes them on its next turn.
        sent = [StatMessage("ns", f"rev-{i}", "pod") for i in range(3)]
        service.server.stats.put_many(sent)
    finally:
        await bounded(service.stopService())
    assert sink.closed
    assert sink.stats == sent
    assert sink.late == []


class _FailingEndpoint:
    """A server endpoint whose listen fails the way a taken port does."""

    def listen(self, factory):
        return fail(CannotListenError("127.0.0.1", 8080, OSError(98, "Address already in use")))


def _service_on(fake_reactor, exits):
    server = StatsServer(_FailingEndpoint(), reactor=fake_reactor)
    return StatserverService(
        server, [], port_description="tcp:8080", reactor=fake_reactor, environ={},
        handle_signals=False, exit=exits.append,
    )  # fmt: skip


def test_bind_failure_before_the_reactor_runs_exits_with_one_line():
    # twist starts the services before it runs the reactor.
    fake_reactor = MemoryReactor()
    service = _service_on(fake_reactor, [])
    with pytest.raises(SystemExit) as e:
        service.startService()
    assert str(e.value.code).startswith("statserver: cannot listen on tcp:8080: ")
    assert "Address already in use" in str(e.value.code)
    assert "\n" not in str(e.value.code)


def test_bind_failure_while_running_stops_the_reactor_with_status_1():
    fake_reactor = MemoryReactor()
    fake_reactor.running = True
    exits = []
    service = _service_on(fake_reactor, exits)
    service.startService()
    assert fake_reactor.hasStopped
    assert "Address already in use" in service.listen_error
    for trigger, args, kwargs in fake_reactor.triggers["after"]["shutdown"]:
        trigger(*args, **kwargs)
    assert exits == [1]


def test_ping_interval_zero_turns_pings_off():
    options = parse("--port", "tcp:0:interface=127.0.0.1", "--ping-interval", "0")
    assert options["ping-interval"] == 0
    server = makeService(options, reactor=reactor).server
    assert server.factory.autoPingInterval == 0 and server.factory.autoPingTimeout == 0
