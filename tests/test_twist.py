"""The installed command, run as a user runs it: ``twist statserver ...`` in a subprocess."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import DatagramProtocol, ProcessProtocol

TIMEOUT = 30.0  # a cold start imports Twisted, autobahn and protobuf on a busy machine

# A text frame as Knative v0.16-v0.19 activators send it.
JSON_FRAME = (
    '{"Key":{"Namespace":"ns-1","Name":"rev-1"},'
    '"Stat":{"pod_name":"activator-1","average_concurrent_requests":1.5,"request_count":3}}'
)


def twist(*args):
    """The command line: the ``twist`` script installed beside this Python, if any."""
    script = Path(sys.executable).with_name("twist")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "twisted", *args]


def bounded(d, seconds=TIMEOUT):
    return d.addTimeout(seconds, reactor)


class Lines:
    """Lines seen so far, and Deferreds for the first line matching a test."""

    def __init__(self):
        self.seen = []
        self._waiting = []

    def add(self, line):
        self.seen.append(line)
        for entry in list(self._waiting):
            test, d = entry
            if test(line):
                self._waiting.remove(entry)
                d.callback(line)

    def first(self, test):
        for line in self.seen:
            if test(line):
                return succeed(line)
        d = Deferred()
        self._waiting.append((test, d))
        return bounded(d)


class Twist(ProcessProtocol):
    """``twist`` as a child process: its stdout and stderr lines, and how it ended."""

    def __init__(self):
        self.stdout = Lines()
        self.stderr = Lines()
        self.ended = Deferred()
        self._partial = {1: b"", 2: b""}

    def childDataReceived(self, fd, data):
        lines = (self._partial[fd] + data).split(b"\n")
        self._partial[fd] = lines.pop()
        for line in lines:
            (self.stdout if fd == 1 else self.stderr).add(line.decode("utf-8", "replace"))

    def processEnded(self, reason):
        self.ended.callback(reason.value)


def json_lines(lines, key):
    out = []
    for line in lines:
        try:
            # twist's JSON log records start with an RS character; stats lines do not.
            record = json.loads(line.lstrip("\x1e"))
        except ValueError:
            continue
        if isinstance(record, dict) and key in record:
            out.append(record)
    return out


def is_json_with(key, **values):
    def test(line):
        found = json_lines([line], key)
        return bool(found) and all(found[0].get(k) == v for k, v in values.items())

    return test


class Notifications(DatagramProtocol):
    """systemd's side of ``$NOTIFY_SOCKET``."""

    def __init__(self):
        self.messages = Lines()

    def datagramReceived(self, data, addr=None):
        self.messages.add(data.decode())


class Client(WebSocketClientProtocol):
    def __init__(self):
        super().__init__()
        self.opened = Deferred()
        self.closed = Deferred()

    def onOpen(self):
        self.opened.callback(self)

    def onClose(self, wasClean, code, reason):
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"handshake failed: {reason}"))
        self.closed.callback(code)


async def connect(port, host="127.0.0.1"):
    factory = WebSocketClientFactory(f"ws://{host}:{port}/", reactor=reactor)
    factory.protocol = Client
    client = await bounded(TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory))
    await bounded(client.opened)
    return client


async def start_twist(tmp_path, *args, port="tcp:0:interface=127.0.0.1", launcher=()):
    """``twist statserver --port PORT ARGS`` (run by ``launcher`` if given) with a notify
    socket; returns (process protocol, notifications)."""
    notifications = Notifications()
    listener = reactor.listenUNIXDatagram(str(tmp_path / "notify"), notifications)
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"))
    proto = Twist()
    argv = [*launcher, *twist("statserver", "--port", port, *args)]
    process = reactor.spawnProcess(proto, argv[0], argv, env=env)
    proto.process = process
    proto.cleanup = listener.stopListening
    return proto, notifications


async def port_of(proto):
    """The port the server says it listens on."""
    try:
        line = await proto.stdout.first(is_json_with("port", log_namespace="statserver.tap"))
    except Exception:
        _kill(proto)
        proto.cleanup()
        raise
    return json_lines([line], "port")[0]["port"]


def _kill(proto):
    try:
        proto.process.signalProcess("KILL")
    except Exception:
        pass


@pytest_twisted.ensureDeferred
async def test_receives_a_stat_prints_it_and_stops_on_sigterm(tmp_path):
    proto, notifications = await start_twist(tmp_path, "--stats-log", "-")
    port = await port_of(proto)
    try:
        assert await notifications.messages.first(lambda m: m.startswith("READY=1"))
        client = await connect(port)
        client.sendMessage(JSON_FRAME.encode(), isBinary=False)
        line = await proto.stdout.first(is_json_with("namespace"))
        assert line.startswith("{")
        stat = json.loads(line)
        assert {k: v for k, v in stat.items() if k != "received_at"} == {
            "namespace": "ns-1",
            "name": "rev-1",
            "pod_name": "activator-1",
            "average_concurrent_requests": 1.5,
            "average_proxied_concurrent_requests": 0.0,
            "request_count": 3.0,
            "proxied_request_count": 0.0,
            "process_uptime": 0.0,
            "timestamp": None,
        }
        assert stat["received_at"].endswith("Z")

        proto.process.signalProcess("TERM")
        assert await bounded(client.closed) == 1012
        ended = await bounded(proto.ended)
    except BaseException:
        _kill(proto)
        raise
    finally:
        await proto.cleanup()
    assert ended.exitCode == 0 and ended.signal is None, (ended, proto.stderr.seen)
    assert "STOPPING=1" in notifications.messages.seen
    summaries = [e for e in json_lines(proto.stdout.seen, "log_namespace")
                 if e["log_namespace"] == "statserver.summary"]
    assert [(e["stats"], e["pods"], e["revisions"]) for e in summaries] == [(1, 1, 1)]
    output = "\n".join(proto.stdout.seen + proto.stderr.seen)
    assert "Traceback" not in output
    assert len(json_lines(proto.stdout.seen, "namespace")) == 1


@pytest_twisted.ensureDeferred
async def test_sighup_rereads_the_bucket_owners_file(tmp_path):
    owners = tmp_path / "owners"
    owners.write_text("autoscaler-bucket-00-of-02\n")
    bucket_01 = "autoscaler-bucket-01-of-02.knative-serving.svc.cluster.local"
    proto, _ = await start_twist(
        tmp_path, "--bucket-owners-file", str(owners), "--stats-log", str(tmp_path / "s.log")
    )
    port = await port_of(proto)
    try:
        with pytest.raises(ConnectionError):
            await connect(port, host=bucket_01)  # not ours
        owners.write_text("autoscaler-bucket-01-of-02\n")
        proto.process.signalProcess("HUP")
        await proto.stdout.first(lambda line: "reloading" in line)
        client = await connect(port, host=bucket_01)  # ours now
        client.sendClose()
        await bounded(client.closed)
        proto.process.signalProcess("TERM")
        ended = await bounded(proto.ended)
    except BaseException:
        _kill(proto)
        raise
    finally:
        await proto.cleanup()
    assert ended.exitCode == 0


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="needs systemd-socket-activate"
)
@pytest_twisted.ensureDeferred
async def test_socket_activation(tmp_path):
    # systemd-socket-activate listens and execs twist with the socket as fd 3, named as a
    # socket unit's FileDescriptorName (by default the unit's name) would name it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    launcher = [shutil.which("systemd-socket-activate"), f"--listen=127.0.0.1:{free}",
                "--fdname=statserver.socket"]
    for name in ("PATH", "PYTHONPATH", "NOTIFY_SOCKET", "VIRTUAL_ENV"):
        launcher.append(f"--setenv={name}")
    proto, notifications = await start_twist(
        tmp_path, "--stats-log", "-", port="systemd:domain=INET:name=statserver.socket",
        launcher=launcher,
    )  # fmt: skip
    try:
        await proto.stderr.first(lambda line: line.startswith("Listening on"))
        # Like a socket unit, it starts the server on the first connection.
        client = await connect(free)
        assert await port_of(proto) == free
        assert await notifications.messages.first(lambda m: m.startswith("READY=1"))
        client.sendMessage(JSON_FRAME.encode(), isBinary=False)
        line = await proto.stdout.first(is_json_with("namespace"))
        assert json.loads(line)["name"] == "rev-1"
        proto.process.signalProcess("TERM")
        assert await bounded(client.closed) == 1012
        ended = await bounded(proto.ended)
    except BaseException:
        _kill(proto)
        raise
    finally:
        await proto.cleanup()
    assert ended.exitCode == 0


def run_twist(*args):
    return subprocess.run(
        twist("statserver", *args), capture_output=True, text=True, timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args,first_line",
    [
        (["--port", "tcp:notaport"], "Error: invalid --port 'tcp:notaport': "),
        (["--queue-size", "-1"], "Error: --queue-size must be a positive whole number, not '-1'"),
        (["--stats-log", "/nonexistent/stats.jsonl"],
         "Error: cannot write --stats-log '/nonexistent/stats.jsonl': No such file or directory"),
    ],
)
def test_bad_options_exit_non_zero_with_a_readable_line(args, first_line):
    result = run_twist(*args)
    assert result.returncode == 64  # EX_USAGE
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith(first_line)
    # Then only twist's synopsis, not the whole option list.
    assert lines[1:] == ["Usage: twist [options] plugin [plugin_options]"]
    assert result.stdout == ""


def test_a_port_in_use_exits_non_zero_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_twist("--port", f"tcp:{port}:interface=127.0.0.1")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"statserver: cannot listen on tcp:{port}:interface=127.0.0.1: ")
    assert "in use" in lines[0]
    assert "Traceback" not in result.stdout
